"""The dashboard in a real browser: the real job's output of a seeded dirty scenario in FerretDB,
the page served by Streamlit and read in headless Chromium (Debian's `chromium` and
`chromium-driver`, through Selenium). Its KPIs come from the job's per-minute figures and must
equal the scenario's truth; an order looked up shows its outcome. A screenshot goes to
docs/dashboard.png (the README shows it)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conf.settings import REPO_ROOT, DashboardSettings, Settings
from contract import minutely
from scripts.bench_dashboard import CHROMEDRIVER, CHROMIUM, cards, chromium, free_port, served
from scripts.bench_dashboard import wait_for as wait
from scripts.dashboard import text, view
from scripts.dashboard.queries import Reader
from scripts.dashboard.view import EVENT, KAFKA
from sinks.batch_stats import BatchStats, PartitionStats
from sinks.live_io import LiveFigures
from sinks.mongo_io import MongoSink
from tests.integration.helpers import drain, isolated, mongo_db
from tests.integration.test_reconcile_e2e import load_scenario, small_batches

pytestmark = pytest.mark.integration
needs_chromium = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (bash scripts/setup.sh installs them)",
)
SCREENSHOT = REPO_ROOT / "docs" / "dashboard.png"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
LOOKUP_CARD = '.st-key-lookup [data-testid="stMetric"]'


@pytest.fixture(scope="module")
def job_output(settings: Settings, spark: Any, tmp_path_factory: Any) -> Iterator[Any]:
    """The dirty scenario of the end-to-end test through the real job (its status reports
    included: `drain` runs them as `python -m streaming` does), and its truth."""
    name = f"dash-{uuid.uuid4().hex[:8]}"
    s = small_batches(isolated(settings, name, str(tmp_path_factory.mktemp(name) / "checkpoint")))
    truth = load_scenario(s)
    sink = MongoSink(s)
    sink.ensure_indexes()
    drain(spark, s, sink)
    assert mongo_db(s)[s.mongo.status_collection].find_one({"lag": 0}), "no status, or lag > 0"
    yield s, truth
    mongo_db(s).client.drop_database(s.mongo.database)


def expected_cards(truth: dict[str, Any]) -> dict[str, str]:
    """The KPI cards the truth implies, over a window holding the whole scenario."""
    closed = [o for o in truth["orders"] if o["final"]]
    (currency,) = {o["currency"] for o in truth["orders"]}
    paid = sum(o["status"] == "PAID" for o in closed)
    unpaid = sum(o["amount"] for o in closed if o["status"] == "UNPAID")
    owed = sum(o["amount"] - o["paid"] for o in closed if o["status"] == "UNDERPAID")
    assert unpaid and owed  # the scenario has both: the cards name the currency
    return {
        "Orders": f"{len(truth['orders']):,}",
        "Closed orders": f"{len(closed):,}",
        "Paid rate": f"{paid / len(closed) * 100:.1f}%",
        f"Unpaid value ({currency})": f"{unpaid / 100:,.2f}",
        f"Under-paid value ({currency})": f"{owed / 100:,.2f}",
        "Orphan payments": f"{sum(o['final'] for o in truth['orphans']):,}",
        "Dead letters": f"{len(truth['dead_letters']):,}",
        "Job lag": "0",  # drained, and Kafka's end offsets read live
    }


@needs_chromium
def test_dashboard_in_a_browser_shows_the_job_output(job_output: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    s, truth = job_output
    env = {
        "MONGO_URI": s.mongo.uri.get_secret_value(),
        "MONGO_DATABASE": s.mongo.database,
        "KAFKA_BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
        "DASHBOARD_WINDOW_MIN": "600",  # the whole scenario (about an hour of event time)
        "DASHBOARD_REFRESH_S": "60",  # no redraw while the test reads the page
    }
    order = next(o for o in truth["orders"] if o["status"] == "UNDERPAID" and o["final"])
    with served(env, free_port()) as url, chromium() as driver:
        driver.get(url)
        wait(driver, lambda d: len(cards(d)) == len(view.cards(view.Kpis())))
        shown = cards(driver)
        assert {k: shown.get(k) for k in expected_cards(truth)} == expected_cards(truth)
        assert shown["Orders/min"] != text.NONE and shown["Latency p99"] != text.NONE
        job = driver.find_element(By.CSS_SELECTOR, ".st-key-job").text
        assert f"Database {s.mongo.database} on FerretDB" in job and "batch " in job

        def order_box(d: Any) -> Any:
            found = d.find_elements(By.CSS_SELECTOR, ".st-key-order_id input")
            return found[0] if found else None

        wait(driver, order_box).send_keys(order["order_id"], Keys.ENTER)
        wait(driver, lambda d: "Status" in cards(d, LOOKUP_CARD))
        money = {k: f"{order[k] / 100:,.2f} {order['currency']}" for k in ("amount", "paid")}
        assert cards(driver, LOOKUP_CARD) == {
            "Status": "UNDERPAID",
            "Amount": money["amount"],
            "Paid": money["paid"],
            "Balance": f"{(order['amount'] - order['paid']) / 100:,.2f} {order['currency']}",
        }
        lookup = driver.find_element(By.CSS_SELECTOR, ".st-key-lookup").text
        assert order["payment_ids"] and all(p in lookup for p in order["payment_ids"])
        assert "order time" in lookup and "Kafka to written" in lookup

        driver.set_window_size(1400, 2400)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))

        # what a user types is shown as text, never as markup
        box = wait(driver, order_box)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("<b>no-such-order</b>", Keys.ENTER)
        wait(driver, lambda d: "No order" in d.find_element(By.CSS_SELECTOR, ".st-key-lookup").text)
        lookup_el = driver.find_element(By.CSS_SELECTOR, ".st-key-lookup")
        assert "<b>no-such-order</b>" in lookup_el.text
        assert not lookup_el.find_elements(By.TAG_NAME, "b")

        # the dead-letter view: the newest, with the printable preview of a value the job kept
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]'))
        code = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stCode"]')[-1].text
        previews = {d.get("preview") for d in mongo_db(s)[s.mongo.dead_letters_collection].find()}
        assert code in {text.cut(p, 4000) for p in previews if p} | {"(no value)"}


def write_figures(s: Settings, batch_id: int, orders: dict[int, int],
                  latency: dict[int, int] | None = None) -> None:  # fmt: skip
    """Through the job's own writer: `orders` per minute after T0, `latency` documents per
    minute after T0 (by Kafka time)."""
    t0 = int(T0.timestamp() * 1000)
    tally: minutely.Tally = {
        (t0 + m * 60_000, minutely.ORDERS, minutely.ALL, "EUR"): [n, n * 100]
        for m, n in orders.items()
    }
    hist = {t0 + m * 60_000: Counter({120: n}) for m, n in (latency or {}).items()}
    stats = BatchStats(batch_id, [PartitionStats(0, tally=tally, minute_latency=hist)])
    LiveFigures(s).write(stats, f"cp:{batch_id}")


def test_reader_follows_each_clocks_newest_minute(settings: Settings, unique: Any) -> None:
    """Each clock's window ends at its newest figure, found once, then followed as newer
    minutes are written; the lag falls back to the job's figure when Kafka has no answer."""
    s = isolated(settings, unique("dashq"), "/nonexistent")
    db = mongo_db(s)
    dash = DashboardSettings(window_min=10, kafka_timeout_s=0.5)
    reader = Reader(s, dash)
    try:
        assert reader.snapshot().figures == [] and reader.ends == {EVENT: None, KAFKA: None}
        write_figures(s, 0, {0: 1, 5: 2}, latency={60_000: 9})  # Kafka time: months later
        snap = reader.snapshot()
        assert snap.ends == {
            EVENT: T0 + timedelta(minutes=5),
            KAFKA: T0 + timedelta(minutes=60_000),
        }
        assert sorted(f["count"] for f in snap.figures) == [1, 2, 9]
        assert all("prev" not in f for f in snap.figures)  # the job's bookkeeping is not read

        write_figures(s, 1, {12: 4})
        snap = reader.snapshot()
        assert snap.ends[EVENT] == T0 + timedelta(minutes=12)
        assert sorted(f["count"] for f in snap.figures) == [2, 4, 9]  # minute 0 left the window

        db[s.mongo.status_collection].insert_one(
            {"_id": "cp", "at": T0, "batch_id": 1, "lag": 7,
             "offsets": [{"topic": f"{unique('none')}", "partition": 0, "end": 1, "latest": 8}]}
        )  # fmt: skip
        snap = reader.snapshot()
        assert snap.latest is None and view.lag(snap.status, snap.latest) == (7, False)
    finally:
        reader.close()
        db.client.drop_database(s.mongo.database)
