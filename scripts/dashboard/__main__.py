"""`python -m scripts.dashboard [--port N]`: the dashboard on Streamlit's server, beside a running
job (or none): it prints its address, then serves until Ctrl-C.

Which database it reads comes from the settings (MONGO_URI, MONGO_DATABASE, ...; `make run`
prints the line for its run), its own from DASHBOARD_* (see conf/settings.py DashboardSettings).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from conf.settings import REPO_ROOT, SettingsError, load_settings

APP = Path(__file__).resolve().parent / "app.py"


def command(port: int, address: str = "127.0.0.1") -> list[str]:
    """The command that serves the page (the tests and the benchmark start it too)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port), "--server.address", address, "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        # a viewer's page: no deploy or rerun buttons, and errors as their type only (the full
        # message and traceback go to this terminal: they may name hosts)
        "--client.toolbarMode", "viewer", "--client.showErrorDetails", "type",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
        dash = settings.dashboard
    except (SettingsError, ValueError) as exc:
        print(f"dashboard: invalid settings: {exc}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m scripts.dashboard", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=dash.port, help="env DASHBOARD_PORT; default %(default)s"
    )
    parser.add_argument(
        "--address", default=dash.address, help="env DASHBOARD_ADDRESS; default %(default)s"
    )
    args = parser.parse_args(argv)
    print(
        f"dashboard: http://{args.address}:{args.port}  (database {settings.mongo.database}, "
        f"refreshed every {dash.refresh_s:g} s; Ctrl-C stops it)",
        flush=True,
    )
    server = subprocess.Popen(command(args.port, args.address), cwd=REPO_ROOT)
    try:
        return server.wait()
    except KeyboardInterrupt:  # Streamlit stops on SIGINT (a terminal's Ctrl-C sends it both)
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        return 130


if __name__ == "__main__":
    sys.exit(main())
