"""A local Cloud Storage emulator: fake-gcs-server (github.com/fsouza/fake-gcs-server, built from
its Go module by scripts/setup.sh into STACK_DIR/bin), serving Google's JSON API over plain HTTP
on 127.0.0.1, so that Google's own libraries (Spark's GCS connector, google-cloud-storage) run
against it unchanged.

`python -m scripts.stack up` starts it when STACK_GCS is set (port STACK_GCS_PORT, its log and pid
under STACK_DIR/gcs) and creates the buckets the settings name: a gs:// SPARK_CHECKPOINT_LOCATION's
and JOB_LOG_GCS_BUCKET. Objects live in its memory, so `down` drops them: its filesystem backend
keeps no empty "folder/" objects, which Spark's checkpoint needs (a new folder is listed before
anything is written in it). tests/integration/test_gcs_checkpoint.py starts one of its own with
`launch`. The job uses it with GCS_EMULATOR_HOST=http://127.0.0.1:<port>.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from conf.settings import Settings
from scripts.stack import Service, StackError, running_pid, start, stop, wait_until

MARKER = "fake-gcs-server"


def binary(stack_dir: str | Path) -> Path:
    return Path(stack_dir) / "bin" / "fake-gcs-server"


def command(exe: Path, port: int) -> list[str]:
    """The server's command line: plain HTTP on 127.0.0.1:`port`, objects in memory."""
    url = f"http://127.0.0.1:{port}"
    return [
        str(exe),
        "-scheme=http",
        "-host=127.0.0.1",
        f"-port={port}",
        "-backend=memory",
        f"-public-host=127.0.0.1:{port}",
        f"-external-url={url}",  # the Location of resumable uploads
        "-log-level=warn",
    ]


def service(s: Settings) -> Service:
    home = Path(s.stack.dir) / "gcs"
    return Service("gcs", home, command(binary(s.stack.dir), s.stack.gcs_port), MARKER)


def address(svc: Service) -> str:
    """The server's base URL (what GCS_EMULATOR_HOST should say)."""
    return next(a for a in svc.cmd if a.startswith("-external-url=")).split("=", 1)[1]


def ready(base_url: str, timeout: float = 2.0) -> bool:
    """True when the server answers a JSON API call (the bucket list)."""
    try:
        with urllib.request.urlopen(f"{base_url}/storage/v1/b", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def ensure_bucket(base_url: str, name: str, timeout: float = 10.0) -> bool:
    """Create bucket `name` through the JSON API; True when created, False when it was there."""
    req = urllib.request.Request(
        f"{base_url}/storage/v1/b?project=local-emulator",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 409:
            return False
        raise StackError(f"creating bucket {name}: HTTP {exc.code} {exc.read()[:200]!r}") from None
    except (OSError, urllib.error.URLError) as exc:
        raise StackError(f"creating bucket {name}: {exc}") from None


def buckets(s: Settings) -> list[str]:
    """The buckets the settings name: a gs:// checkpoint's and the log upload's."""
    names = []
    if s.spark.checkpoint_location.startswith("gs://"):
        names.append(s.spark.checkpoint_location[len("gs://") :].split("/", 1)[0])
    if s.job_log.gcs_bucket:
        names.append(s.job_log.gcs_bucket)
    return sorted({n for n in names if n})


def launch(svc: Service, bucket_names: list[str], timeout: float) -> int:
    """Start the server (or find it running), wait until it answers, create the buckets."""
    exe = Path(svc.cmd[0])
    if not exe.exists():
        raise StackError(f"{exe} missing: run scripts/setup.sh first")
    pid = start(svc)
    url = address(svc)
    wait_until(lambda: ready(url), svc, timeout)
    for name in bucket_names:
        ensure_bucket(url, name)
    return pid


def is_running(s: Settings) -> bool:
    return running_pid(service(s)) is not None


def up(s: Settings) -> None:
    svc = service(s)
    names = buckets(s)
    pid = launch(svc, names, s.stack.start_timeout_s)
    shown = ",".join(names) or "-"
    print(f"gcs       up  pid={pid} GCS_EMULATOR_HOST={address(svc)} buckets={shown}")


def down(s: Settings) -> None:
    print(f"{'gcs':9} {'stopped' if stop(service(s)) else 'was not running'}")


def status(s: Settings) -> dict[str, bool]:
    svc = service(s)
    pid, ok = running_pid(svc), ready(address(svc))
    print(f"{svc.name:9} {'up' if ok else 'down'}  pid={pid or '-'}  log={svc.log_file}")
    return {svc.name: ok}
