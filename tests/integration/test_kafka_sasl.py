"""Kafka with authentication, as Confluent Cloud runs it: a broker of this module's own with a
SASL_SSL listener (self-signed CA; PLAIN and SCRAM-SHA-512), on ports 29192-29194.

- The dirty truth scenario, produced and drained over SASL_SSL, equals its truth: with PLAIN
  in this process (the test helpers' producer, the job's query), and with SCRAM-SHA-512
  through the commands a user runs (`producers.simulate`, `python -m streaming` publishing its
  documents through Spark's Kafka sink, PIPELINE_WRITE_TO=kafka) and a Kafka Connect worker
  (scripts/connect.py, port 28385) whose MongoDB sink writes them.
- A wrong password or an untrusted CA ends a producer command and the job within seconds,
  exit 2, with one line naming the setting at fault.
- The password appears in no output, `--help`, job log, Spark event log (the UI's environment
  and plans), broker log or Connect worker log.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conf.settings import REPO_ROOT, Settings
from producers.topics import ensure_topics
from scripts import connect, kafka_auth
from sinks.mongo_io import MongoSink
from tests.integration.helpers import connect_worker, drain, isolated, job_env, topic_names
from tests.integration.test_connect_path import converged
from tests.integration.test_reconcile_e2e import assert_equals_truth, load_scenario, small_batches
from tests.scenarios import DIRTY
from tests.unit.test_cli_errors import error_line

pytestmark = pytest.mark.integration

PORTS = {"kafka_port": 29192, "kafka_controller_port": 29193, "kafka_sasl_port": 29194}
CONNECT_PORT = 28385
REFUSED_WITHIN_S = 15.0  # Python's and the imports' start included; the check itself is ~1 s


@pytest.fixture(scope="module")
def sasl_stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """This module's broker (the session's FerretDB is used as it is)."""
    from scripts import stack as stack_ctl
    from scripts.chaos import link_binaries

    stack_dir = tmp_path_factory.mktemp("sasl") / "stack"
    link_binaries(stack_dir)
    st = settings.stack.model_copy(
        # mongo_port 1: `up` leaves MongoDB alone; nothing but the broker is started
        update={"dir": str(stack_dir), **PORTS, "mongo_port": 1, "prometheus": False,
                "gcs": False, "connect": False, "spark_workers": 0}
    )  # fmt: skip
    kafka = settings.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:29192"})
    s = settings.model_copy(update={"stack": st, "kafka": kafka})
    try:
        stack_ctl.up(s)
        yield s
    finally:
        stack_ctl.stop(stack_ctl.kafka_service(s))


@pytest.fixture(scope="module")
def sasl_worker(
    sasl_stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A Kafka Connect worker of this module's, on the broker's SASL_SSL listener (SCRAM)."""
    s = sasl_stack.model_copy(update={"kafka": kafka_auth.client_settings(sasl_stack)})
    home = tmp_path_factory.mktemp("sasl-connect")
    with connect_worker(s, home, f"sc-{secrets.token_hex(4)}", CONNECT_PORT) as worker:
        yield worker


def over(s: Settings, mechanism: str, name: str, checkpoint: Path) -> Settings:
    """Settings of one test: its topics, database and checkpoint, Kafka over SASL_SSL."""
    s = s.model_copy(update={"kafka": kafka_auth.client_settings(s, mechanism)})
    # 150 offsets per source and batch: batch 0 ends before the scenario's late events
    return small_batches(isolated(s, name, str(checkpoint)), per_trigger=150)


def run(module: str, args: list[str], env: dict[str, str], log: Path | None = None,
        timeout: float = 600) -> tuple[subprocess.CompletedProcess[str], float]:  # fmt: skip
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if log is not None:
        log.write_text(done.stdout + done.stderr)
    return done, time.monotonic() - t0


def files_holding(secret: str, *roots: Path) -> list[str]:
    """Every file under `roots` whose bytes contain `secret`."""
    found = []
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file() and secret.encode() in path.read_bytes():
                found.append(str(path))
    return found


def test_truth_over_sasl_ssl_with_plain(
    spark, sasl_stack: Settings, unique: Callable[[str], str], tmp_path: Path
) -> None:
    s = over(sasl_stack, "PLAIN", unique("plain"), tmp_path / "checkpoint")
    assert s.kafka.client_config()["sasl.mechanism"] == "PLAIN"
    truth = load_scenario(s, n_orders=400)  # produced over SASL_SSL, every kind of dirt
    drain(spark, s, MongoSink(s))  # Spark's Kafka source over SASL_SSL (PlainLoginModule)
    assert_equals_truth(s, truth)  # Kafka timestamps read back over SASL_SSL too
    password = kafka_auth.stack_user(sasl_stack).password
    assert password not in str(spark.sparkContext.getConf().getAll())


def test_truth_over_sasl_ssl_with_scram_through_the_commands_and_connect(
    sasl_stack: Settings, sasl_worker: Settings, unique: Callable[[str], str], tmp_path: Path
) -> None:
    name = unique("scram")
    s = over(sasl_stack, "SCRAM-SHA-512", name, tmp_path / "checkpoint")
    s = s.model_copy(update={"connect": sasl_worker.connect.model_copy(
        update={"connector": f"{name}-sink"}), "stack": sasl_worker.stack})  # fmt: skip
    ensure_topics(s, topic_names(s), s.topics.partitions)
    connect.create(s)
    connect.wait_running(s, 60)
    password = kafka_auth.stack_user(sasl_stack).password
    events = tmp_path / "events"
    events.mkdir()
    env = job_env(
        s,
        **kafka_auth.client_env(sasl_stack, s.kafka),
        JOB_LOG_FILE=str(tmp_path / "job.log"),
        PIPELINE_WRITE_TO="kafka",  # Spark's Kafka sink over SASL_SSL too, then Connect's
        PYSPARK_SUBMIT_ARGS=f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir="
        f"{events.as_uri()} --conf spark.eventLog.compress=false pyspark-shell",
    )
    truth_file = tmp_path / "truth.json"
    # every kind of dirt but late events (the PLAIN test has those): 200 orders, a few batches
    dirty = {**DIRTY, "p_late": 0.0}
    dirt = [a for k, v in dirty.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    scenario = ["--count", "200", "--seed", "7", "--event-rate", "0.2", *dirt]
    produced, _ = run("producers.simulate", [*scenario, "--truth", str(truth_file)], env,
                      tmp_path / "producer.log")  # fmt: skip
    assert produced.returncode == 0, produced.stderr[-3000:]
    job, _ = run("streaming", ["--available-now"], env, tmp_path / "streaming.out")
    assert job.returncode == 0, job.stderr[-3000:]
    truth = json.loads(truth_file.read_text())
    converged(s, truth)
    assert_equals_truth(s, truth)

    assert any(events.iterdir()), "no Spark event log written"
    broker = Path(sasl_stack.stack.dir) / "kafka"  # its logs, and its data: SCRAM keeps hashes
    worker_logs = connect.home(sasl_worker) / "logs"
    assert files_holding(password, tmp_path, broker / "logs", broker / "kafka.log",
                         broker / "data", worker_logs) == []  # fmt: skip
    assert password not in produced.stdout + produced.stderr + job.stdout + job.stderr


@pytest.mark.parametrize(
    ("module", "mechanism", "wrong", "setting"),
    [
        ("producers.orders", "PLAIN", "password", "KAFKA_SASL_PASSWORD"),
        ("streaming", "SCRAM-SHA-512", "password", "KAFKA_SASL_PASSWORD"),
        ("producers.orders", "SCRAM-SHA-512", "ca", "KAFKA_SSL_CA_LOCATION"),
        ("streaming", "PLAIN", "ca", "KAFKA_SSL_CA_LOCATION"),
    ],
)
def test_a_refused_setting_is_named_in_one_line_within_seconds(
    sasl_stack: Settings, unique: Callable[[str], str], tmp_path: Path, module: str,
    mechanism: str, wrong: str, setting: str,
) -> None:  # fmt: skip
    right = kafka_auth.stack_user(sasl_stack).password
    bad = f"Wr0ng-{secrets.token_hex(8)}"
    s = over(sasl_stack, mechanism, unique("refused"), tmp_path / "checkpoint")
    kafka = kafka_auth.client_settings(sasl_stack, mechanism, password=bad if wrong == "password"
                                       else None)  # fmt: skip
    env = job_env(s, **kafka_auth.client_env(sasl_stack, kafka),
                  JOB_LOG_FILE=str(tmp_path / "job.log"))  # fmt: skip
    if wrong == "ca":  # a CA of its own, which never signed the broker's certificate
        kafka_auth.ensure_tls(tmp_path / "other-ca")
        env["KAFKA_SSL_CA_LOCATION"] = str(tmp_path / "other-ca" / "ca.pem")
    args = ["--count", "5"] if module.startswith("producers") else ["--available-now"]
    done, elapsed = run(module, args, env, tmp_path / "out.log", timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert elapsed < REFUSED_WITHIN_S
    line = error_line(done)
    assert setting in line, line
    for secret in (bad, right):
        assert files_holding(secret, tmp_path) == []

    helped, _ = run(module, ["--help"], env, timeout=60)
    assert helped.returncode == 0 and helped.stdout
    assert right not in helped.stdout + helped.stderr and bad not in helped.stdout + helped.stderr
