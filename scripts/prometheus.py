"""A local Prometheus (Debian's `prometheus` package, installed by scripts/setup.sh) that scrapes
the job's metrics endpoint (`python -m streaming --metrics-port N`), and its HTTP API.

`python -m scripts.stack up` starts it when STACK_PROMETHEUS is set (port STACK_PROMETHEUS_PORT,
targets STACK_METRICS_TARGETS, a scrape every 2 s; config and data under STACK_DIR/prometheus/),
and tests/integration/test_prometheus.py starts one of its own with `launch`. The Grafana
dashboard in conf/grafana/dashboards/ queries the same series.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from conf.settings import Settings
from scripts.stack import Service, StackError, running_pid, start, stop, wait_until

BINARY = Path("/usr/bin/prometheus")
JOB = "payments-job"
SCRAPE_INTERVAL_S = 2.0


class PrometheusError(RuntimeError):
    """Prometheus answered a query with an error, or not at all."""


def config(targets: list[str], scrape_interval_s: float, job: str = JOB) -> str:
    """prometheus.yml scraping `targets` (host:port of the job's metrics endpoints). YAML is a
    superset of JSON, so the lists are written as JSON and need no quoting rules of their own."""
    interval = f"{scrape_interval_s:g}s"
    return "\n".join(
        [
            "# Written by scripts/prometheus.py from the settings; edits are overwritten.",
            "global:",
            f"  scrape_interval: {interval}",
            f"  evaluation_interval: {interval}",
            "scrape_configs:",
            f"  - job_name: {json.dumps(job)}",
            f"    scrape_interval: {interval}",
            f"    scrape_timeout: {interval}",
            f"    static_configs: [{{targets: {json.dumps(targets)}}}]",
            "",
        ]
    )


def write_config(home: Path, targets: list[str], scrape_interval_s: float) -> Path:
    """The config file under `home` (its data goes to `home`/data)."""
    (home / "data").mkdir(parents=True, exist_ok=True)
    path = home / "prometheus.yml"
    path.write_text(config(targets, scrape_interval_s))
    return path


def command(home: Path, port: int, retention: str = "7d") -> list[str]:
    """The server's command line: config and data under `home`, listening on 127.0.0.1 only."""
    return [
        str(BINARY),
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]


def service(s: Settings) -> Service:
    home = Path(s.stack.dir) / "prometheus"
    return Service("prometheus", home, command(home, s.stack.prometheus_port), str(BINARY))


def address(svc: Service) -> str:
    """The server's base URL, from its listen address."""
    listen = next(a for a in svc.cmd if a.startswith("--web.listen-address="))
    return f"http://{listen.split('=', 1)[1]}"


def launch(svc: Service, targets: list[str], scrape_interval_s: float, timeout: float) -> int:
    """Write the scrape config for `targets`, start the server (a running one re-reads its config
    on SIGHUP) and wait until it is ready. Returns its pid."""
    if not BINARY.exists():
        raise StackError(f"{BINARY} missing: run scripts/setup.sh first")
    write_config(svc.home, targets, scrape_interval_s)
    pid = running_pid(svc)
    if pid is not None:
        os.kill(pid, signal.SIGHUP)
    else:
        pid = start(svc)
    wait_until(lambda: ready(address(svc)), svc, timeout)
    return pid


def is_running(s: Settings) -> bool:
    return running_pid(service(s)) is not None


def up(s: Settings) -> None:
    svc = service(s)
    targets = [t.strip() for t in s.stack.metrics_targets.split(",") if t.strip()]
    pid = launch(svc, targets, SCRAPE_INTERVAL_S, s.stack.start_timeout_s)
    print(f"prometheus up  pid={pid} url={address(svc)} scrapes={','.join(targets)}")


def down(s: Settings) -> None:
    print(f"{'prometheus':9} {'stopped' if stop(service(s)) else 'was not running'}")


def status(s: Settings) -> dict[str, bool]:
    svc = service(s)
    pid, ok = running_pid(svc), ready(address(svc))
    print(f"{svc.name:9} {'up' if ok else 'down'}  pid={pid or '-'}  log={svc.log_file}")
    return {svc.name: ok}


def _get(url: str, timeout: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def ready(base_url: str, timeout: float = 2.0) -> bool:
    """True when the server answers /-/ready (its storage is open and it serves queries)."""
    try:
        _get(f"{base_url}/-/ready", timeout)
    except (OSError, urllib.error.URLError):
        return False
    return True


def query(base_url: str, expr: str, timeout: float = 10.0) -> list[dict[str, Any]]:
    """An instant query through /api/v1/query: the result vector (empty when nothing matched).
    Raises PrometheusError for an invalid expression or an unreachable server."""
    url = f"{base_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        body = json.loads(_get(url, timeout))
    except urllib.error.HTTPError as exc:  # 400/422: a bad expression; the body says why
        raise PrometheusError(f"{expr!r}: {exc.read().decode(errors='replace')}") from None
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise PrometheusError(f"{expr!r}: {exc}") from None
    if body.get("status") != "success":
        raise PrometheusError(f"{expr!r}: {body.get('error')}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": data["result"]}]
    return list(data["result"])


def value(base_url: str, expr: str) -> float | None:
    """The single value of an expression that yields one series, or None when it yields none."""
    result = query(base_url, expr)
    if not result:
        return None
    if len(result) > 1:
        raise PrometheusError(f"{expr!r}: {len(result)} series, expected one")
    return float(result[0]["value"][1])


def scrapes(base_url: str, job: str = JOB) -> int:
    """How many successful scrapes of `job` Prometheus has stored in the last hour (`up` is 1
    for each), summed over its targets."""
    return int(value(base_url, f'sum(sum_over_time(up{{job="{job}"}}[1h]))') or 0)
