"""A Kafka Connect worker in distributed mode (Apache Kafka's own jars) running MongoDB's sink
connector, which upserts the documents that the job publishes with PIPELINE_WRITE_TO=kafka.

    python -m scripts.connect up | create | status | down

`up` starts the local worker (STACK_DIR/connect: jars and plugin from scripts/setup.sh, its
config, log and pid file), waits for its REST API on 127.0.0.1:STACK_CONNECT_PORT, creates or
updates the sink from conf/connect/mongo-sink.json and waits until it and its tasks run.
`create` only puts the sink's config, to CONNECT_URL when that names a cluster of your own.
`python -m scripts.stack up` runs `up` when STACK_CONNECT is set; `down` stops the worker (the
connector's config stays in the worker's config topic).

The connector config says `${env:MONGO_URI}`: the worker resolves it from its environment (an
EnvVarConfigProvider that reads MONGO_URI only), so the REST API never shows the URI. The worker's
properties may hold the Kafka SASL password: written mode 0600, never printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from conf.settings import REPO_ROOT, Settings, load_settings
from scripts.stack import (
    Service,
    StackError,
    refuse_taken,
    running_pid,
    start,
    stop,
    tail,
    wait_until,
)

logger = logging.getLogger(__name__)

MARKER = "ConnectDistributed"
TEMPLATE = REPO_ROOT / "conf" / "connect" / "mongo-sink.json"
PLUGIN = "mongo-kafka-connect"
URI_ENV = "MONGO_URI"  # the one variable the worker's `env` config provider may read
STRING_CONVERTER = "org.apache.kafka.connect.storage.StringConverter"
CLIENT_PREFIXES = ("", "producer.", "consumer.", "admin.")

LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/worker.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %X{connector.context}%m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.common.name = org.apache.kafka.common
logger.common.level = WARN
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
logger.jetty.name = org.eclipse.jetty
logger.jetty.level = WARN
logger.driver.name = org.mongodb.driver
logger.driver.level = WARN
"""


def home(s: Settings) -> Path:
    return Path(s.stack.dir) / "connect"


def worker_log(s: Settings) -> Path:
    """The worker's own log (log4j2); the service's log file has only what the JVM printed."""
    return home(s) / "logs" / "worker.log"


def service(s: Settings) -> Service:
    root = home(s)
    return Service(
        name="connect",
        home=root,
        cmd=[
            "java",
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={root / 'config' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={root / 'logs'}",
            "-cp",
            str(root / "libs" / "*"),
            f"org.apache.kafka.connect.cli.{MARKER}",
            str(root / "config" / "worker.properties"),
        ],
        marker=MARKER,
    )


def base_url(s: Settings) -> str:
    return s.connect.base_url(s.stack.connect_port)


def client_properties(s: Settings) -> dict[str, str]:
    """The Java client's Kafka settings (address, TLS, SASL) without Spark's `kafka.` prefix."""
    return {k.removeprefix("kafka."): v for k, v in s.kafka.spark_options().items()}


def worker_properties(s: Settings) -> dict[str, str]:
    """The worker's configuration. Holds the SASL JAAS password when there is one: never log it."""
    gid, root = s.connect.group_id, home(s)
    props = {
        "group.id": gid,
        "config.storage.topic": f"{gid}.configs",
        "offset.storage.topic": f"{gid}.offsets",
        "status.storage.topic": f"{gid}.status",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        # a sink keeps its offsets in its consumer group: these topics stay (nearly) empty
        "offset.storage.partitions": "1",
        "status.storage.partitions": "1",
        "listeners": f"http://127.0.0.1:{s.stack.connect_port}",
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": str(s.stack.connect_port),
        "plugin.path": str(root / "plugins"),
        "key.converter": STRING_CONVERTER,
        "value.converter": STRING_CONVERTER,
        "config.providers": "env",
        "config.providers.env.class": (
            "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
        ),
        "config.providers.env.param.allowlist.pattern": f"^{URI_ENV}$",
        # one local worker: a restarted one gets its connector back at once, not after 5 min
        "scheduled.rebalance.max.delay.ms": "0",
        "offset.flush.interval.ms": "10000",
    }
    for key, value in client_properties(s).items():
        for prefix in CLIENT_PREFIXES:
            props[prefix + key] = value
    return props


def properties_text(props: dict[str, str]) -> str:
    """A Java .properties file (read as ISO-8859-1, `\\` escapes): values escaped to match."""

    def escape(value: str) -> str:
        out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        out = "".join(c if ord(c) < 128 else f"\\u{ord(c):04x}" for c in out)
        return "\\" + out if out[:1].isspace() else out

    return "".join(f"{key}={escape(value)}\n" for key, value in props.items())


PLACEHOLDER = re.compile(r"\{\{(\w+)\.(\w+)\}\}")
RENDERED_GROUPS = ("topics", "mongo", "connect")


def _setting(s: Settings, match: re.Match[str]) -> str:
    group, field = match.groups()
    if group not in RENDERED_GROUPS or field not in type(getattr(s, group)).model_fields:
        raise ValueError(f"{TEMPLATE.name}: unknown placeholder {match.group(0)}")
    value = getattr(getattr(s, group), field)
    if not isinstance(value, str | int):  # a SecretStr never goes into the connector's config
        raise ValueError(f"{TEMPLATE.name}: {match.group(0)} cannot be rendered")
    return str(value)


def render(s: Settings, template: str | None = None) -> dict[str, str]:
    """The sink connector's config: the template's {{group.field}} placeholders (in keys and
    values) replaced by the settings. `${env:...}` is left for the worker to resolve."""
    raw = json.loads(TEMPLATE.read_text() if template is None else template)

    def sub(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: _setting(s, m), text)

    return {sub(key): sub(str(value)) for key, value in raw.items()}


def request(method: str, url: str, body: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    """One REST call: (status, parsed JSON body or None). HTTP errors return their status."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def ready(url: str) -> bool:
    """True when the worker's REST API answers and the worker has joined its group."""
    try:
        return request("GET", f"{url}/connectors", timeout=2.0)[0] == 200
    except OSError:
        return False


def launch(svc: Service, mongo_uri: str) -> int:
    """Start the worker (or find it running) with MONGO_URI in its environment only."""
    (svc.home / "logs").mkdir(parents=True, exist_ok=True)
    return start(svc, env={URI_ENV: mongo_uri})


def prepare(s: Settings) -> Service:
    """Check the jars and plugin, write the worker's config (0600) and log config."""
    svc = service(s)
    libs, plugin = svc.home / "libs", svc.home / "plugins" / PLUGIN
    if not any(libs.glob("connect-runtime-*.jar")) or not any(plugin.glob("*.jar")):
        raise StackError(f"connect jars missing in {libs} or {plugin}: run scripts/setup.sh")
    config = svc.home / "config"
    config.mkdir(parents=True, exist_ok=True)
    path = config / "worker.properties"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        os.fchmod(out.fileno(), 0o600)  # an older file may have had looser bits
        out.write(properties_text(worker_properties(s)))
    (config / "log4j2.properties").write_text(LOG4J2)
    return svc


def _redact(s: Settings, text: str) -> str:
    uri = s.mongo.uri.get_secret_value()
    password = urllib.parse.urlsplit(uri).password
    for secret in (uri, password):
        if secret:
            text = text.replace(secret, "***")
    return text


def create(s: Settings, timeout: float = 60.0) -> dict[str, str]:
    """PUT the sink's config (creates or updates it; the same config again changes nothing).
    A worker that is still joining its group answers 409/503 for a while: retried."""
    url, name = base_url(s), s.connect.connector
    config = render(s)
    deadline = time.monotonic() + timeout
    while True:
        status, body = request("PUT", f"{url}/connectors/{name}/config", config, timeout=30.0)
        if status in (200, 201):
            return config
        if status not in (409, 500, 503) or time.monotonic() > deadline:
            raise StackError(f"PUT connector {name}: HTTP {status} {_redact(s, str(body))[:500]}")
        time.sleep(0.5)


def connector_status(s: Settings) -> dict[str, Any] | None:
    status, body = request("GET", f"{base_url(s)}/connectors/{s.connect.connector}/status")
    return body if status == 200 and isinstance(body, dict) else None


def task_count(s: Settings) -> int:
    """How many tasks the connector made (its task configs); 0 before it made them."""
    status, body = request("GET", f"{base_url(s)}/connectors/{s.connect.connector}/tasks")
    return len(body) if status == 200 and isinstance(body, list) else 0


def restart_failed(s: Settings) -> None:
    """Restart the connector's FAILED parts (a task fails when MongoDB is unreachable: with
    mongo.errors.tolerance=data only bad records go to the errors topic, not a whole outage)."""
    name = s.connect.connector
    url = f"{base_url(s)}/connectors/{name}/restart?includeTasks=true&onlyFailed=true"
    status, body = request("POST", url)
    if status not in (200, 202, 204):
        raise StackError(f"restart {name}: HTTP {status} {_redact(s, str(body))[:500]}")


def wait_running(s: Settings, timeout: float, restarts: int = 1) -> dict[str, Any]:
    """Wait until the connector and all its tasks are RUNNING. FAILED ones are restarted up to
    `restarts` times, then StackError with the trace of the first FAILED one."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        body = connector_status(s)
        if body:
            units = [body["connector"], *body.get("tasks", [])]
            failed = [u for u in units if u.get("state") == "FAILED"]
            if failed and restarts > 0:
                logger.warning(
                    "connector=%s failed=%d restarting", s.connect.connector, len(failed)
                )
                restart_failed(s)
                restarts -= 1
                time.sleep(1.0)
                continue
            if failed:
                trace = _redact(s, str(failed[0].get("trace", "")))
                raise StackError(f"connector {s.connect.connector} FAILED:\n{trace}")
            running = all(u.get("state") == "RUNNING" for u in units)
            # the status lists tasks as they start: all of them are the ones the connector made
            if running and body.get("tasks") and len(body["tasks"]) >= task_count(s):
                return body
        time.sleep(0.5)
    raise StackError(f"connector {s.connect.connector} not RUNNING in {timeout:.0f}s: {body}")


def is_running(s: Settings) -> bool:
    return running_pid(service(s)) is not None


def start_worker(s: Settings) -> int:
    """Start the local worker and wait until its REST API answers. Returns its pid."""
    svc = prepare(s)
    refuse_taken(svc, lambda: ready(base_url(s)), base_url(s))
    pid = launch(svc, s.mongo.uri.get_secret_value())
    wait_until(lambda: ready(base_url(s)), svc, s.stack.start_timeout_s)
    return pid


def up(s: Settings) -> None:
    """The local worker (unless CONNECT_URL names a cluster) and the sink, RUNNING."""
    pid = None if s.connect.url else start_worker(s)
    create(s, s.stack.start_timeout_s)
    body = wait_running(s, s.stack.start_timeout_s)
    where = f"pid={pid} url={base_url(s)}" if pid else f"url={base_url(s)} (CONNECT_URL)"
    print(f"connect   up  {where} connector={s.connect.connector} tasks={len(body['tasks'])}")


def down(s: Settings) -> None:
    print(f"{'connect':9} {'stopped' if stop(service(s)) else 'was not running'}")


def status(s: Settings) -> dict[str, bool]:
    svc = service(s)
    try:
        body = connector_status(s)
    except OSError:
        body = None
    states = [body["connector"]["state"], *(t["state"] for t in body["tasks"])] if body else []
    ok = bool(states) and all(x == "RUNNING" for x in states)
    shown = "/".join(states) or "-"
    print(f"{'connect':9} {'up' if ok else 'down'}  pid={running_pid(svc) or '-'}  "
          f"{s.connect.connector}={shown}  log={worker_log(s)}")  # fmt: skip
    return {"connect": ok}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.connect",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "create", "status", "down"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    s = load_settings()
    try:
        if args.command == "up":
            up(s)
        elif args.command == "create":
            create(s, s.stack.start_timeout_s)
            wait_running(s, s.stack.start_timeout_s)
            print(f"connector {s.connect.connector} RUNNING at {base_url(s)}")
        elif args.command == "status":
            return 0 if all(status(s).values()) else 1
        else:
            down(s)
    except StackError as exc:
        print(f"connect: {exc}", file=sys.stderr)
        if not s.connect.url:
            print(f"worker log tail:\n{tail(worker_log(s))}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
