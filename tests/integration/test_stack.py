"""Stack control against a second, private stack (own ports, own folder): `up` really answers,
`down` leaves no process behind, and a failure to start says why."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conf.settings import MongoSettings, Settings, StackSettings
from scripts import stack as ctl

pytestmark = pytest.mark.integration


def _private(settings: Settings, tmp_path: Path) -> Settings:
    home = tmp_path / "stack"
    home.mkdir()
    shared = Path(settings.stack.dir)
    # reuse the installed binaries; everything the services write goes under tmp_path
    (home / "kafka").mkdir()
    os.symlink(shared / "kafka" / "libs", home / "kafka" / "libs")
    os.symlink(shared / "bin", home / "bin")
    st = StackSettings(
        kafka_port=19492,  # (scripts.chaos has 19092-19093: they may run at once)
        kafka_controller_port=19493,
        mongo_port=27517,
        dir=str(home),
        start_timeout_s=90,
    )
    return settings.model_copy(
        update={
            "stack": st,
            "kafka": settings.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:19492"}),
            "mongo": MongoSettings(uri="mongodb://127.0.0.1:27517/"),
        }
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def test_up_answers_and_down_leaves_nothing(settings: Settings, tmp_path: Path) -> None:
    s = _private(settings, tmp_path)
    services = [ctl.kafka_service(s), ctl.mongo_service(s)]
    try:
        ctl.up(s)
        pids = [ctl.running_pid(svc) for svc in services]
        assert all(pids), pids
        assert ctl.kafka_ready(s.kafka.bootstrap_servers)
        assert ctl.mongo_ready(s.mongo.uri.get_secret_value())
        assert ctl.status(s) == {"kafka": True, "ferretdb": True}
    finally:
        ctl.down(s)
    assert not any(_alive(pid) for pid in pids if pid)
    assert not any(svc.pid_file.exists() for svc in services)
    assert ctl.status(s) == {"kafka": False, "ferretdb": False}


def test_a_service_that_cannot_start_says_why(settings: Settings, tmp_path: Path) -> None:
    s = _private(settings, tmp_path)
    bad = Path(s.stack.dir) / "badbin"
    bad.mkdir()
    shutil.copy(Path(settings.stack.dir) / "bin" / "ferretdb", bad / "ferretdb")
    svc = ctl.mongo_service(s)
    broken = ctl.Service(svc.name, svc.home, [*svc.cmd, "--no-such-flag"], svc.marker)
    ctl.start(broken)
    with pytest.raises(ctl.StackError, match="exited during start-up"):
        ctl.wait_until(lambda: ctl.mongo_ready(s.mongo.uri.get_secret_value(), 0.5), broken, 20)
    ctl.stop(broken)


def test_remote_services_are_not_started(settings: Settings, tmp_path: Path, capsys) -> None:
    s = _private(settings, tmp_path).model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"bootstrap_servers": "broker.example:9092"}),
            "mongo": MongoSettings(uri="mongodb+srv://user:pw@cluster.example/"),
        }
    )
    ctl.up(s)
    out = capsys.readouterr().out
    assert "remote (not started)" in out and "pw" not in out
    assert ctl.running_pid(ctl.kafka_service(s)) is None
    assert ctl.running_pid(ctl.mongo_service(s)) is None
