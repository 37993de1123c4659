"""The job's metrics as a real Prometheus sees them: Debian's `prometheus` scrapes the job
(`python -m streaming --metrics-port N`, a subprocess) every second while a seeded dirty scenario
streams through in waves; then the series the dashboards use are queried through Prometheus's
HTTP API, and so is every PromQL expression of the Grafana dashboard.

Both tests share one run (module fixture): Kafka -> job -> FerretDB on the test stack, with
Prometheus and the job on ports of their own (9190-9199 and 9118/9119)."""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conf.settings import REPO_ROOT, Settings
from producers.scenario import START_MS, ScenarioConfig, generate
from producers.truth import compute_truth
from scripts import prometheus
from scripts.stack import Service, stop, tail
from tests.integration.helpers import create_topics, isolated, job_env, produce
from tests.scenarios import DIRTY

pytestmark = pytest.mark.integration

DASHBOARD = REPO_ROOT / "conf" / "grafana" / "dashboards" / "payments.json"
PER_TRIGGER = 150  # records per micro-batch at most: several batches per wave
WAVES = 3


@dataclass(frozen=True)
class Run:
    url: str  # Prometheus
    settings: Settings
    produced: int  # Kafka records, valid or not
    dead_letters: Counter[str]  # the truth's, by reason class (`missing_field`, not `:amount`)
    job_log: Path

    def value(self, expr: str) -> float | None:
        return prometheus.value(self.url, expr)

    def series(self, expr: str) -> list[dict[str, Any]]:
        return prometheus.query(self.url, expr)


def free_port(candidates: range | tuple[int, ...]) -> int:
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {candidates}")


def wait_for(what: str, check: Callable[[], bool], job: subprocess.Popen[Any], log: Path,
             timeout: float = 300) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if job.poll() is not None:
            pytest.fail(f"the job exited ({job.returncode}) waiting for {what}:\n{tail(log, 40)}")
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; job log:\n{tail(log, 40)}")


@pytest.fixture(scope="module")
def run(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("prometheus")
    s = isolated(settings, f"prom-{uuid.uuid4().hex[:8]}", str(tmp / "checkpoint"))
    cfg = ScenarioConfig(n_orders=300, seed=5, event_rate=0.2, rules=s.pipeline.rules(), **DIRTY)
    scenario = generate(cfg)
    truth = compute_truth(scenario, s.topics.orders, s.topics.payments).to_json()
    topics = {"orders": s.topics.orders, "payments": s.topics.payments}
    records = [(topics[e.topic], e.key, e.value) for e in scenario.emissions]
    create_topics(s)

    metrics_port = free_port((9118, 9119))
    home = tmp / "prom"
    svc = Service("prometheus", home, prometheus.command(home, free_port(range(9190, 9200))),
                  str(prometheus.BINARY))  # fmt: skip
    url = prometheus.address(svc)
    log = tmp / "job.log"
    job: subprocess.Popen[Any] | None = None
    try:
        prometheus.launch(svc, [f"127.0.0.1:{metrics_port}"], 1.0, timeout=60)
        env = job_env(s, PIPELINE_MAX_OFFSETS_PER_TRIGGER=str(PER_TRIGGER),
                      PIPELINE_TRIGGER_INTERVAL_S="0.5")  # fmt: skip
        with log.open("w") as out:
            job = subprocess.Popen(
                [sys.executable, "-m", "streaming", "--metrics-port", str(metrics_port)],
                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        read = f'sum(payments_input_rows_total{{instance="127.0.0.1:{metrics_port}"}})'
        wait_for("Prometheus to scrape the job", lambda: prometheus.scrapes(url) >= 1, job, log)
        size = math.ceil(len(records) / WAVES)
        for i in range(0, len(records), size):  # the job reads each wave before the next
            sent = produce(s, records[i : i + size]) + i
            wait_for(f"{sent} records read", lambda n=sent: (prometheus.value(url, read) or 0) >= n,
                     job, log)  # fmt: skip
        lag = "sum(payments_consumer_lag_records)"
        wait_for("lag 0", lambda: prometheus.value(url, lag) == 0, job, log)
        start = prometheus.scrapes(url)
        wait_for("3 more scrapes", lambda: prometheus.scrapes(url) >= start + 3, job, log)
        dead = Counter(d["reason"].split(":")[0] for d in truth["dead_letters"])
        yield Run(url, s, len(records), dead, log)
    finally:
        if job is not None and job.poll() is None:
            job.send_signal(signal.SIGTERM)
            try:
                job.wait(120)
            except subprocess.TimeoutExpired:
                job.kill()
                job.wait(30)
        stop(svc)


def test_every_series_the_dashboards_use_is_plausible(run: Run) -> None:
    s = run.settings
    assert run.value(f'up{{job="{prometheus.JOB}"}}') == 1
    # Spark's progress: every record read once; rates, batches, state, watermark
    assert run.value("sum(payments_input_rows_total)") == run.produced
    assert (run.value("max_over_time(payments_input_rows_per_second[10m])") or 0) > 0
    assert (run.value("max_over_time(payments_processed_rows_per_second[10m])") or 0) > 0
    batches = run.value("sum(payments_batch_duration_seconds_count)") or 0
    assert batches >= run.produced / PER_TRIGGER
    assert 0 < (run.value("sum(payments_batch_duration_seconds_sum)") or 0) < batches * 120
    assert (run.value("sum(payments_state_rows)") or 0) > 0
    assert (run.value("sum(payments_state_memory_bytes)") or -1) >= 0
    watermark = run.value("max(payments_watermark_timestamp_seconds)") or 0
    assert START_MS / 1000 - 3600 <= watermark <= START_MS / 1000 + 86_400
    # Kafka lag: one series per topic-partition of this run, none negative, 0 once drained
    lags = {(r["metric"]["topic"], r["metric"]["partition"]): float(r["value"][1])
            for r in run.series("payments_consumer_lag_records")}  # fmt: skip
    topics = {s.topics.orders, s.topics.payments}
    assert {(t, str(p)) for t in topics for p in range(3)} <= set(lags)
    assert all(v == 0 for k, v in lags.items() if k[0] in topics)
    assert (run.value("max(max_over_time(payments_consumer_lag_records[10m]))") or 0) > 0
    # the sink: documents, retries, dead letters by reason, latency, last batch
    assert (run.value("sum(payments_sink_documents_written_total)") or 0) > 0
    kinds = {r["metric"]["kind"] for r in run.series("payments_sink_rows_total > 0")}
    assert {"outcome", "dead_letter"} <= kinds, kinds
    assert run.value("sum(payments_sink_retries_total)") == 0
    dead = {r["metric"]["reason"]: float(r["value"][1])
            for r in run.series("payments_dead_letters_total")}  # fmt: skip
    assert dead == {reason: float(n) for reason, n in run.dead_letters.items()}
    assert dead.get("invalid_json", 0) > 0
    latency = run.value("sum(payments_produced_to_written_seconds_count)") or 0
    assert latency > 0
    assert 0 < (run.value("sum(payments_produced_to_written_seconds_sum)") or 0) / latency < 300
    assert (run.value("sum(payments_sink_batch_seconds_count)") or 0) >= 1
    assert (run.value("time() - max(payments_last_batch_timestamp_seconds)") or 1e9) < 300
    assert (run.value("max(payments_last_batch_id)") or 0) >= 1


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, expr) of every query of every panel, rows' nested panels included."""

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            yield from walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                yield panel["title"], target["expr"]

    return list(walk(json.loads(DASHBOARD.read_text())["panels"]))


def test_every_dashboard_query_returns_data(run: Run) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    empty, nan = [], []
    for title, expr in exprs:
        result = run.series(expr)
        if not result:
            empty.append((title, expr))
        elif all(math.isnan(float(r["value"][1])) for r in result):
            nan.append((title, expr))  # a quantile of nothing: no sample in its window
    assert not empty, f"queries with no data: {empty}"
    assert not nan, f"queries with only NaN: {nan}"


def test_compose_config_is_valid_and_the_dashboard_uses_the_provisioned_datasource() -> None:
    conf = REPO_ROOT / "conf"
    check = subprocess.run(
        [str(prometheus.BINARY.with_name("promtool")), "check", "config",
         str(conf / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    provisioned = (conf / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    assert "uid: prometheus\n" in provisioned
    panels = json.loads(DASHBOARD.read_text())["panels"]
    uids = {p["datasource"]["uid"] for p in panels if "datasource" in p}
    uids |= {t["datasource"]["uid"] for p in panels for t in p.get("targets", [])}
    assert uids == {"prometheus"}
