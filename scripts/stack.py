"""Start, stop and inspect the local stack: one Apache Kafka broker (KRaft) and FerretDB, with
STACK_PROMETHEUS a Prometheus scraping the job's metrics (STACK_METRICS_TARGETS), and with
STACK_GCS a Cloud Storage emulator (scripts/gcs.py), with STACK_SCHEMA_REGISTRY a schema registry
(scripts/registry.py), and with STACK_CONNECT a Kafka Connect worker running the MongoDB sink
(scripts/connect.py).

    python -m scripts.stack up | down | status | logs [kafka|mongo|prometheus|gcs|registry]

Binaries come from scripts/setup.sh. Data, logs and pid files live under STACK_DIR (.stack/).
`up` waits until each service answers a real request (Kafka metadata, Mongo `ping`); `down`
stops exactly the processes whose pids `up` recorded. A service whose address in the settings is
not the local one (Confluent Cloud, Atlas) is left alone.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conf.settings import Settings, load_settings

logger = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A local service could not be started or stopped; the message says which and why."""


@dataclass(frozen=True)
class Service:
    name: str
    home: Path
    cmd: list[str]
    marker: str  # a string of the process's command line, checked before a pid is signalled

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.name}.log"


def _kafka_java(home: Path) -> list[str]:
    """`java` with the Kafka jars and logging set up; the broker and its tools both start so."""
    return [
        "java",
        f"-Dlog4j2.configurationFile={home / 'config' / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={home / 'logs'}",
        "-cp",
        str(home / "libs" / "*"),
    ]


def kafka_service(s: Settings) -> Service:
    home = Path(s.stack.dir) / "kafka"
    return Service(
        name="kafka",
        home=home,
        cmd=[
            *_kafka_java(home),
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "kafka.Kafka",
            str(home / "config" / "server.properties"),
        ],
        marker="kafka.Kafka",
    )


def mongo_service(s: Settings) -> Service:
    home = Path(s.stack.dir) / "ferretdb"
    pragmas = [x.strip() for x in s.stack.ferretdb_sqlite_pragmas.split(",") if x.strip()]
    query = "&".join(f"_pragma={x}" for x in pragmas)
    return Service(
        name="ferretdb",
        home=home,
        cmd=[
            str(Path(s.stack.dir) / "bin" / "ferretdb"),
            "--handler=sqlite",
            f"--sqlite-url=file:{home / 'data'}/" + (f"?{query}" if query else ""),
            f"--state-dir={home}",
            f"--listen-addr=127.0.0.1:{s.stack.mongo_port}",
            "--debug-addr=-",
            "--telemetry=disable",
            "--log-level=warn",
        ],
        marker="ferretdb",
    )


def kafka_cluster_id() -> str:
    """A random KRaft cluster id as Kafka makes them (`Uuid.randomUuid`): 16 random bytes in
    URL-safe base64, never starting with "-", which the storage tool's argument parser would
    take for an option (1 id in 64 does)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_properties(s: Settings, data_dir: Path) -> str:
    port, cport = s.stack.kafka_port, s.stack.kafka_controller_port
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{cport}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data_dir}",
            f"num.partitions={s.topics.partitions}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "message.max.bytes=10485760",
            "",
        ]
    )


LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def prepare_kafka(s: Settings) -> None:
    """Write the broker's config and format its KRaft storage on first use."""
    svc = kafka_service(s)
    libs = svc.home / "libs"
    if not libs.is_dir() or not any(libs.glob("kafka_2.13-*.jar")):
        raise StackError(f"kafka jars missing in {libs}: run scripts/setup.sh first")
    data = svc.home / "data"
    config = svc.home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (svc.home / "logs").mkdir(exist_ok=True)
    (config / "server.properties").write_text(kafka_properties(s, data))
    if s.stack.kafka_sasl_port:  # the SASL_SSL listener (off by default)
        from scripts import kafka_auth  # imports this module: not at the top

        kafka_auth.prepare(s, config / "server.properties")
    (config / "log4j2.properties").write_text(LOG4J2)
    if (data / "meta.properties").exists():
        return
    cluster_id = kafka_cluster_id()
    cmd = [
        *_kafka_java(svc.home),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(config / "server.properties"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise StackError(f"formatting KRaft storage failed:\n{done.stdout}\n{done.stderr}")
    logger.info("kafka storage formatted cluster_id=%s dir=%s", cluster_id, data)


def prepare_mongo(s: Settings) -> None:
    svc = mongo_service(s)
    if not Path(svc.cmd[0]).exists():
        raise StackError(f"{svc.cmd[0]} missing: run scripts/setup.sh first")
    (svc.home / "data").mkdir(parents=True, exist_ok=True)


def _cmdline(pid: int) -> str:
    """A process's command line. It reads empty for a moment while the process execs (the Spark
    launcher scripts exec java), so an empty read is retried before it counts."""
    raw = b""
    for _ in range(50):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        if raw:
            break
        time.sleep(0.01)
    return raw.replace(b"\0", b" ").decode()


def running_pid(svc: Service) -> int | None:
    """The recorded pid, if that process is alive and is still our service."""
    try:
        pid = int(svc.pid_file.read_text().strip())
        cmdline = _cmdline(pid)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    if svc.marker not in cmdline:
        return None
    try:  # a zombie (exited, not yet reaped) is not running
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return None
    return None if state == "Z" else pid


def start(svc: Service, env: dict[str, str] | None = None) -> int:
    """Start `svc` (or find it running); `env`: variables added to its environment only (a
    secret passed so never shows on its command line)."""
    pid = running_pid(svc)
    if pid:
        return pid
    svc.home.mkdir(parents=True, exist_ok=True)
    with open(svc.log_file, "ab") as log:
        proc = subprocess.Popen(
            svc.cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=svc.home,
            env={**os.environ, **env} if env else None,
        )
    svc.pid_file.write_text(str(proc.pid))
    logger.info("started service=%s pid=%s", svc.name, proc.pid)
    return proc.pid


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


def kafka_ready(bootstrap: str, conf: dict[str, str] | None = None, timeout: float = 2.0) -> bool:
    from confluent_kafka.admin import AdminClient

    try:
        # log_level 0: a broker still starting is expected here, not worth librdkafka's noise
        client = AdminClient({**(conf or {}), "bootstrap.servers": bootstrap, "log_level": 0})
        md = client.list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False
    return bool(md.brokers)


def mongo_ready(uri: str, timeout: float = 2.0) -> bool:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    try:
        with MongoClient(uri, serverSelectionTimeoutMS=int(timeout * 1000)) as client:
            return client.admin.command("ping").get("ok") == 1
    except PyMongoError:
        return False


def refuse_taken(svc: Service, answers: Callable[[], bool], where: str) -> None:
    """Before starting `svc`: refuse an address another process already answers on (its answer
    would be taken for ours, and it may go away under us)."""
    if running_pid(svc) is None and answers():
        raise StackError(f"{svc.name}: another process already answers at {where}; stop it or "
                         "choose another port")  # fmt: skip


def wait_until(check, svc: Service, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if running_pid(svc) is None:
            raise StackError(f"{svc.name} exited during start-up; log tail:\n{tail(svc.log_file)}")
        time.sleep(0.5)
    raise StackError(
        f"{svc.name} did not answer within {timeout:.0f}s; log tail ({svc.log_file}):\n"
        f"{tail(svc.log_file)}"
    )


def up(s: Settings) -> None:
    if s.kafka_is_local:
        prepare_kafka(s)
        svc = kafka_service(s)
        pid = start(svc)
        # the broker writes its own log under logs/; the launcher's file only has start-up errors
        plaintext = f"127.0.0.1:{s.stack.kafka_port}"
        wait_until(lambda: kafka_ready(plaintext), svc, s.stack.start_timeout_s)
        print(f"kafka     up  pid={pid} bootstrap={plaintext}")
        if s.stack.kafka_sasl_port:
            from scripts import kafka_auth

            kafka_auth.after_start(s, svc, s.stack.start_timeout_s)
            env = kafka_auth.sasl_dir(s) / "client.env"
            print(f"kafka     SASL_SSL on 127.0.0.1:{s.stack.kafka_sasl_port} (PLAIN, "
                  f"SCRAM-SHA-512): client settings in {env}")  # fmt: skip
    else:
        print("kafka     remote (not started): KAFKA_BOOTSTRAP_SERVERS points elsewhere")
    if s.mongo_is_local:
        prepare_mongo(s)
        svc = mongo_service(s)
        pid = start(svc)
        uri = s.mongo.uri.get_secret_value()
        wait_until(lambda: mongo_ready(uri), svc, s.stack.start_timeout_s)
        print(f"ferretdb  up  pid={pid} uri=mongodb://127.0.0.1:{s.stack.mongo_port}/")
    else:
        print("mongodb   remote (not started): MONGO_URI points elsewhere")
    if s.stack.prometheus:
        from scripts import prometheus  # imports this module: not at the top

        prometheus.up(s)
    if s.stack.gcs:
        from scripts import gcs  # imports this module: not at the top

        gcs.up(s)
    if s.stack.connect:
        from scripts import connect  # imports this module: not at the top

        connect.up(s)
    if s.wire.stack_schema_registry:
        from scripts import registry  # imports this module: not at the top

        registry.up(s)
    if s.stack.spark_workers > 0:
        from scripts import cluster  # imports this module: not at the top

        cluster.up(s)


def stop(svc: Service, timeout: float = 30.0) -> bool:
    pid = running_pid(svc)
    if pid is None:
        svc.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(svc) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    if running_pid(svc) is not None:
        logger.warning("service=%s pid=%s ignored SIGTERM; sending SIGKILL", svc.name, pid)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    svc.pid_file.unlink(missing_ok=True)
    return True


def down(s: Settings) -> None:
    from scripts import cluster

    if cluster.is_running(s):  # whatever STACK_SPARK_WORKERS says now
        cluster.down(s)
    from scripts import connect

    if connect.is_running(s) or s.stack.connect:  # before Kafka: whatever STACK_CONNECT says now
        connect.down(s)
    for svc in (mongo_service(s), kafka_service(s)):
        print(f"{svc.name:9} {'stopped' if stop(svc) else 'was not running'}")
    from scripts import prometheus

    if prometheus.is_running(s) or s.stack.prometheus:  # whatever STACK_PROMETHEUS says now
        prometheus.down(s)
    from scripts import gcs

    if gcs.is_running(s) or s.stack.gcs:  # whatever STACK_GCS says now
        gcs.down(s)
    from scripts import registry

    if registry.is_running(s) or s.wire.stack_schema_registry:  # whatever the setting says now
        registry.down(s)


def status(s: Settings) -> dict[str, bool]:
    result = {}
    for svc, ready in (
        (kafka_service(s), lambda: kafka_ready(f"127.0.0.1:{s.stack.kafka_port}")),
        (mongo_service(s), lambda: mongo_ready(s.mongo.uri.get_secret_value())),
    ):
        pid = running_pid(svc)
        ok = ready()
        result[svc.name] = ok
        print(f"{svc.name:9} {'up' if ok else 'down'}  pid={pid or '-'}  log={svc.log_file}")
    from scripts import cluster, connect, gcs, prometheus

    if s.stack.prometheus or prometheus.is_running(s):
        result.update(prometheus.status(s))
    if s.stack.gcs or gcs.is_running(s):
        result.update(gcs.status(s))
    if s.stack.connect or connect.is_running(s):
        result.update(connect.status(s))
    from scripts import registry

    if s.wire.stack_schema_registry or registry.is_running(s):
        result.update(registry.status(s))
    if s.stack.spark_workers > 0 or cluster.is_running(s):
        result.update(cluster.status(s))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status", "logs"])
    parser.add_argument(
        "service",
        nargs="?",
        choices=["kafka", "mongo", "prometheus", "gcs", "registry"],
        default=None,
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    s = load_settings()
    try:
        if args.command == "up":
            up(s)
        elif args.command == "down":
            down(s)
        elif args.command == "status":
            return 0 if all(status(s).values()) else 1
        else:
            services = {"kafka": kafka_service(s), "mongo": mongo_service(s)}
            if s.stack.prometheus or args.service == "prometheus":
                from scripts import prometheus

                services["prometheus"] = prometheus.service(s)
            if s.stack.gcs or args.service == "gcs":
                from scripts import gcs

                services["gcs"] = gcs.service(s)
            if s.wire.stack_schema_registry or args.service == "registry":
                from scripts import registry

                services["registry"] = registry.service(s)
            for name in [args.service] if args.service else list(services):
                svc = services[name]
                log = svc.home / "logs" / "server.log" if name == "kafka" else svc.log_file
                print(f"==> {log} <==\n{tail(log, 50)}")
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
