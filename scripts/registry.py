"""A local Confluent-compatible schema registry: Apicurio Registry (io.apicurio:
apicurio-registry-app from Maven Central, unpacked by scripts/setup.sh into STACK_DIR/apicurio),
a Quarkus application on Java 17 whose Confluent API lives under /apis/ccompat/v7.

`python -m scripts.stack up` starts it when STACK_SCHEMA_REGISTRY is set, on 127.0.0.1:
STACK_SCHEMA_REGISTRY_PORT, its log and pid under STACK_DIR/registry. Its storage is in memory
(H2): `down` forgets every schema, and the producers register theirs again on their next run.
The Avro tests start one of their own with `launch`.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from conf.settings import Settings
from scripts.stack import Service, StackError, refuse_taken, running_pid, start, stop, wait_until

VERSION = "3.0.9"  # scripts/setup.sh's APICURIO_VERSION
RUNNER = f"apicurio-registry-app-{VERSION}-runner.jar"
API = "/apis/ccompat/v7"


def runner(stack_dir: str | Path) -> Path:
    return Path(stack_dir) / "apicurio" / RUNNER


def command(jar: Path, port: int, heap: str = "512m") -> list[str]:
    return [
        "java",
        f"-Xmx{heap}",
        f"-Dquarkus.http.port={port}",
        "-Dquarkus.http.host=127.0.0.1",
        "-Dquarkus.log.level=WARN",
        "-jar",
        str(jar),
    ]


def service_for(stack_dir: str | Path, port: int, heap: str = "512m", name: str = "registry",
                home: Path | None = None) -> Service:  # fmt: skip
    home = home or Path(stack_dir) / name
    return Service(name, home, command(runner(stack_dir), port, heap), RUNNER)


def service(s: Settings) -> Service:
    w = s.wire
    return service_for(s.stack.dir, w.stack_schema_registry_port, w.stack_schema_registry_heap)


def address(svc: Service) -> str:
    """The Confluent API base URL (what SCHEMA_REGISTRY_URL should say)."""
    port = next(a for a in svc.cmd if a.startswith("-Dquarkus.http.port=")).split("=", 1)[1]
    return f"http://127.0.0.1:{port}{API}"


def ready(base_url: str, timeout: float = 2.0) -> bool:
    """True when the registry answers a Confluent API call (the subject list)."""
    try:
        with urllib.request.urlopen(f"{base_url}/subjects", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def launch(svc: Service, timeout: float) -> int:
    """Start the registry (or find it running) and wait until it answers."""
    jar = Path(svc.cmd[-1])
    if not jar.exists():
        raise StackError(f"{jar} missing: run scripts/setup.sh first")
    url = address(svc)
    refuse_taken(svc, lambda: ready(url), url)
    pid = start(svc)
    wait_until(lambda: ready(url), svc, timeout)
    return pid


def is_running(s: Settings) -> bool:
    return running_pid(service(s)) is not None


def up(s: Settings) -> None:
    svc = service(s)
    pid = launch(svc, s.stack.start_timeout_s)
    print(f"registry  up  pid={pid} SCHEMA_REGISTRY_URL={address(svc)} (Apicurio {VERSION})")


def down(s: Settings) -> None:
    print(f"{'registry':9} {'stopped' if stop(service(s)) else 'was not running'}")


def status(s: Settings) -> dict[str, bool]:
    svc = service(s)
    pid, ok = running_pid(svc), ready(address(svc))
    print(f"{svc.name:9} {'up' if ok else 'down'}  pid={pid or '-'}  log={svc.log_file}")
    return {svc.name: ok}
