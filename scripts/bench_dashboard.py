"""What the dashboard costs: the time of one refresh's MongoDB reads, and the page's load time in a
real browser, with 100k order outcomes in the database. Prints figures; not a test.

    python -m scripts.bench_dashboard [--outcomes 100000] [--minutes 1440] [--loads 5]

It fills a fresh `bench_dashboard_*` database as a job that ran for `--minutes` would leave it
(outcomes, orphans, dead letters, the per-minute figures, a status document; the job's indexes,
created by the sink's own `ensure_indexes`), times each read of a refresh (`queries.Reader`) and
the whole refresh, then serves the page with Streamlit and loads it `--loads` times in headless
Chromium: from the request to the KPI cards and the dead-letter table drawn. The database is
dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from conf.settings import REPO_ROOT, DashboardSettings, MongoSettings, Settings, load_settings
from contract import minutely
from contract.events import Channel, Method
from contract.rules import Status
from scripts.dashboard.__main__ import command
from scripts.dashboard.queries import Reader
from sinks.batch_stats import BatchStats, PartitionStats
from sinks.live_io import LiveFigures

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
KPI_CARD = '.st-key-kpis [data-testid="stMetric"]'
DATAFRAME = '[data-testid="stDataFrame"]'
STATUSES = (Status.PAID, Status.UNDERPAID, Status.OVERPAID, Status.UNPAID)
CHANNELS, METHODS = [c.value for c in Channel], [m.value for m in Method]


# -- a browser and a served page (the browser test uses these too) ------------------------------


def free_port(ports: range = range(8601, 8610)) -> int:
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


@contextmanager
def served(env: dict[str, str], port: int, timeout_s: float = 60.0) -> Iterator[str]:
    """The dashboard served by Streamlit on `port` with `env` over this process's; its URL once
    Streamlit answers its health check."""
    log = REPO_ROOT / ".stack" / f"dashboard-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(command(port), cwd=REPO_ROOT, env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited {proc.returncode}: {log.read_text()}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"streamlit did not answer: {log.read_text()}") from None
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@contextmanager
def chromium(width: int = 1400, height: int = 1800) -> Iterator[Any]:
    """Headless Chromium (Debian's `chromium` and `chromium-driver`) driven by Selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--disable-gpu"):  # fmt: skip
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def cards(driver: Any, selector: str = KPI_CARD) -> dict[str, str]:
    """The metric cards under `selector`: label -> value, as the page shows them."""
    from selenium.webdriver.common.by import By

    got = {}
    for card in driver.find_elements(By.CSS_SELECTOR, selector):
        label = card.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text
        got[label.strip()] = card.find_element(
            By.CSS_SELECTOR, '[data-testid="stMetricValue"]'
        ).text
    return got


def wait_for(driver: Any, ready: Callable[[Any], Any], timeout_s: float = 60.0) -> Any:
    """Until `ready(driver)` is truthy (a stale element while Streamlit redraws is retried)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout_s, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,))  # fmt: skip
    return wait.until(ready)


# -- the data a job would have left -------------------------------------------------------------


def outcome(i: int, rng: random.Random, end_ms: int, minutes: int) -> dict[str, Any]:
    order_ts = end_ms - rng.randrange(minutes * minutely.MINUTE_MS)
    amount = rng.randrange(500, 50_000)
    status = rng.choices(STATUSES, (90, 3, 3, 4))[0]
    paid = {Status.PAID: amount, Status.UNDERPAID: amount // 2, Status.OVERPAID: amount + 100,
            Status.UNPAID: 0}[status]  # fmt: skip
    method = METHODS[i % len(METHODS)]
    pays = [] if paid == 0 else [{"payment_id": f"p-{i}", "amount": paid, "method": method,
                                  "payment_ts": order_ts + 30_000}]  # fmt: skip
    return {
        "_id": f"o-{i}", "order_id": f"o-{i}", "status": status.value, "final": True,
        "amount": amount, "paid": paid, "balance": amount - paid, "currency": "EUR",
        "order_ts": order_ts, "payment_ids": [p["payment_id"] for p in pays], "payments": pays,
        "first_payment_delay_ms": 30_000 if pays else None, "kind": "outcome",
        "order": {"customer_id": f"c-{i % 977}", "store_id": "s-1",
                  "channel": CHANNELS[i % len(CHANNELS)],
                  "items": [{"sku": "sku-1", "qty": 1, "price": amount}]},
        "timing": {"first_written_at": order_ts + 1_000, "latency_ms": 800 + i % 400},
    }  # fmt: skip


def figures(outcomes: list[dict[str, Any]], dead: int, end_ms: int) -> BatchStats:
    """The per-minute figures of `outcomes` and `dead` dead letters, as one batch's stats (the
    job's writer stores them: sinks/live_io.py)."""
    tally: minutely.Tally = {}

    def add(contributions: Iterable[tuple[minutely.Key, list[int]]]) -> None:
        for key, values in contributions:
            minutely.add(tally, key, values)

    for o in outcomes:
        add(minutely.order_accepted(o["order_ts"], o["amount"], "EUR", o["order"]["channel"]))
        for p in o["payments"]:
            add(minutely.payment_accepted(p["payment_ts"], p["amount"], "EUR", p["method"]))
        close_ts = o["order_ts"] + 900_000
        add(minutely.order_closed(close_ts, o["status"], o["amount"], o["paid"], "EUR",
                                  len(o["payments"])))  # fmt: skip
    for i in range(dead):
        key, values = minutely.dead_lettered(end_ms - i * 7_000, ("invalid_json", "late")[i % 2])
        minutely.add(tally, key, values)
    latency = {minute: Counter({140: 40, 145: 50, 150: 9, 160: 1})  # log buckets
               for (minute, metric, _, _) in tally if metric == minutely.ORDERS}  # fmt: skip
    return BatchStats(1, [PartitionStats(0, tally=tally, minute_latency=latency)])


def fill(s: Settings, n_outcomes: int, minutes: int, seed: int = 7) -> dict[str, int]:
    """A database as a job running `minutes` would leave it; how many documents of each kind."""
    from sinks.mongo_io import MongoSink

    MongoSink(s).ensure_indexes()  # the job's own indexes
    rng = random.Random(seed)
    end_ms = int(time.time() * 1000) // minutely.MINUTE_MS * minutely.MINUTE_MS
    db = Reader(s, DashboardSettings())
    outs = [outcome(i, rng, end_ms, minutes) for i in range(n_outcomes)]
    for start in range(0, len(outs), 5_000):
        db.outcomes.insert_many(outs[start : start + 5_000], ordered=False)
    n_dead = max(10, n_outcomes // 50)
    db.dead.insert_many([
        {"_id": f"orders:0:{i}", "topic": "orders", "partition": 0, "offset": i,
         "reason": ("invalid_json", "late")[i % 2], "key": f"o-{i}", "preview": "{" + "x" * 600,
         "raw_value": b"{" + b"x" * 600, "dead_lettered_at": end_ms - i * 7_000}
        for i in range(n_dead)
    ])  # fmt: skip
    orphans = [{"_id": f"p-orphan-{i}", "payment_id": f"p-orphan-{i}", "order_id": f"o-{i * 37}",
                "status": "ORPHAN_PAYMENT", "amount": 100, "currency": "EUR", "method": "card",
                "payment_ts": end_ms} for i in range(max(10, n_outcomes // 100))]  # fmt: skip
    db.orphans.insert_many(orphans)
    live = LiveFigures(s)
    n_figures = live.write(figures(outs, n_dead, end_ms), "bench:1")
    db.status.insert_one(
        {"_id": s.spark.checkpoint_location, "query": "reconcile", "batch_id": 1,
         "at": datetime.now(timezone.utc), "watermark": None, "offsets": [], "lag": 0}
    )  # fmt: skip
    db.close()
    return {"outcomes": len(outs), "orphans": len(orphans), "dead_letters": n_dead,
            "figures": n_figures}  # fmt: skip


# -- the measurements ---------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median and max seconds of `repeat` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times)


def refresh_costs(s: Settings, repeat: int) -> dict[str, tuple[float, float]]:
    dash = DashboardSettings()
    r = Reader(s, dash)
    try:
        return {
            "first refresh (a new reader)": timed(
                lambda: Reader(s, dash).snapshot(with_kafka=False), max(1, repeat // 2)
            ),
            "one refresh (KPIs, charts, job status)": timed(
                lambda: r.snapshot(with_kafka=False), repeat
            ),
            "  figures of the window": timed(r.window, repeat),
            "  job status": timed(r.job_status, repeat),
            "dead-letter view (50 newest)": timed(lambda: r.dead_letters(None, 50), repeat),
            "dead-letter view, one reason": timed(lambda: r.dead_letters("late", 50), repeat),
            "order lookup": timed(lambda: r.order("o-4242"), repeat),
        }
    finally:
        r.close()


def pushdown(s: Settings) -> str:
    """Whether the server would serve a range of minutes from an index (FerretDB's explain says
    whether it pushed the filter down to its SQL backend; the dashboard reads by `_id`)."""
    r = Reader(s, DashboardSettings())
    try:
        plan = r.minutely.find(
            {"metric": "orders", "minute": {"$gt": datetime(2000, 1, 1)}}
        ).explain()
        if "filterPushdown" in plan:
            return f"{r.server()}, figures filter pushed down: {plan['filterPushdown']}"
        return f"{r.server()}, plan: {plan.get('queryPlanner', {}).get('winningPlan')}"
    finally:
        r.close()


def page_loads(s: Settings, loads: int) -> list[float]:
    """Seconds from the request to the KPI cards and the dead-letter table drawn, per load."""
    from selenium.webdriver.common.by import By

    env = {"MONGO_DATABASE": s.mongo.database, "DASHBOARD_REFRESH_S": "600"}
    times = []
    with served(env, free_port()) as url, chromium() as driver:
        for _ in range(loads):
            driver.get("about:blank")
            t0 = time.perf_counter()
            driver.get(url)
            wait_for(driver, lambda d: cards(d).get("Orders", "—") != "—")
            wait_for(
                driver, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]')
            )
            times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scripts.bench_dashboard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--outcomes", type=int, default=100_000)
    p.add_argument("--minutes", type=int, default=1440, help="minutes the job ran (figures)")
    p.add_argument("--loads", type=int, default=5, help="page loads to time")
    p.add_argument("--repeat", type=int, default=6, help="timed calls of each read")
    args = p.parse_args(argv)
    base = load_settings()
    name = f"bench_dashboard_{int(time.time())}"
    s = base.model_copy(update={"mongo": MongoSettings(uri=base.mongo.uri, database=name)})
    t0 = time.perf_counter()
    try:
        counts = fill(s, args.outcomes, args.minutes)
        print(f"database {name}: {counts} in {time.perf_counter() - t0:.1f} s")
        load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        print(f"server: {pushdown(s)}; {load}")
        print(f"\nMongoDB reads, median / max of {args.repeat} (ms):")
        for what, (med, worst) in refresh_costs(s, args.repeat).items():
            print(f"  {what:<42} {med * 1000:8.1f} {worst * 1000:8.1f}")
        loads = page_loads(s, args.loads)
        print(f"\npage load in headless Chromium ({args.loads} loads, s): first {loads[0]:.2f}, "
              f"median {statistics.median(loads):.2f}, max {max(loads):.2f}")  # fmt: skip
    finally:
        r = Reader(s, DashboardSettings())
        r.client.drop_database(name)
        r.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
