"""The KPIs, the job's state and the chart frames, from what `queries.py` read. Pure: no
Streamlit, no I/O.

The figures are `metrics_minutely` documents (contract/minutely.py): one per minute, metric and
dimension, amounts in minor units. Values are formatted by `text.py`, so a test can compare the
page's text with these functions' results.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from contract import minutely
from contract.integers import stored_int
from contract.rules import Status
from scripts.dashboard.text import NONE, Card, duration_ms, money, percent, rate, utc
from sinks.batch_stats import percentile

# The two clocks of the figures (contract/minutely.py): event time, and the Kafka record's
# timestamp. Each has its own window, ending at its own newest minute.
EVENT, KAFKA = "event time", "Kafka time"
CLOCKS: dict[str, tuple[str, ...]] = {
    EVENT: tuple(m for m in minutely.METRICS if m in minutely.EVENT_TIME),
    KAFKA: tuple(m for m in minutely.METRICS if m not in minutely.EVENT_TIME),
}
ISO_CURRENCY = re.compile(r"[A-Z]{3}")
CLOSED = (Status.PAID, Status.UNDERPAID, Status.OVERPAID, Status.UNPAID)  # final outcomes


@dataclass(frozen=True)
class Kpis:
    orders: int = 0
    orders_per_min: float | None = None
    closed: int = 0  # orders whose outcome became final in the window
    paid: int = 0
    paid_rate: float | None = None  # PAID / closed
    unpaid: Mapping[str, int] | None = None  # currency -> amount of UNPAID orders
    underpaid: Mapping[str, int] | None = None  # currency -> what UNDERPAID orders still owe
    orphans: int = 0
    dead_letters: int = 0
    dead_letters_per_min: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    lag: int | None = None
    lag_live: bool = False  # True: Kafka's offsets read now; False: the job's last figure


# -- the KPIs -----------------------------------------------------------------------------------


def _of(figures: Iterable[dict[str, Any]], metric: str, dim: str | None = None) -> list[dict]:
    return [f for f in figures if f["metric"] == metric and (dim is None or f["dim"] == dim)]


def _sum(docs: Iterable[dict[str, Any]], value: str) -> int:
    return sum(stored_int(d.get(value) or 0) for d in docs)


def _by_currency(docs: Iterable[dict[str, Any]], value: str) -> dict[str, int]:
    got: Counter[str] = Counter()
    for d in docs:
        got[d.get("currency") or "?"] += stored_int(d.get(value) or 0)
    return dict(got)


def covered_minutes(figures: Iterable[dict[str, Any]], end: datetime | None, window: int) -> int:
    """Minutes from the first figure to `end`, both included, at most the window."""
    minutes = [f["minute"] for f in figures]
    if end is None or not minutes:
        return 0
    return max(1, min(window, int((end - min(minutes)) / timedelta(minutes=1)) + 1))


def _hist(doc: dict[str, Any]) -> Counter[int] | None:
    h = doc.get("hist")
    if isinstance(h, Mapping):
        return Counter({int(k): int(v) for k, v in h.items()})
    if isinstance(h, list):
        return Counter({int(k): int(v) for k, v in h})
    return None


def latency(docs: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """p50 and p99 over the window from the docs' histograms merged; without histograms, the
    newest minute's own p50_ms and p99_ms."""
    hists = [_hist(d) for d in docs]
    if docs and all(h is not None for h in hists):
        merged = sum((h for h in hists if h is not None), Counter())
        return percentile(merged, 50), percentile(merged, 99)
    newest = max(docs, key=lambda d: d["minute"], default=None)
    if newest is None:
        return None, None
    return newest.get("p50_ms"), newest.get("p99_ms")


def lag(
    status: dict[str, Any] | None, latest: Mapping[tuple[str, int], int] | None
) -> tuple[int | None, bool]:
    """(records the job has not read yet, whether from Kafka now): Kafka's end offsets minus
    the job's, or the lag the job recorded with its last batch when Kafka did not answer."""
    if not status:
        return None, False
    offsets = status.get("offsets") or []
    keys = [(o["topic"], o["partition"]) for o in offsets]
    if latest is not None and all(k in latest for k in keys):
        return sum(max(0, latest[k] - o["end"]) for k, o in zip(keys, offsets, strict=True)), True
    return status.get("lag"), False


def kpis(
    figures: list[dict[str, Any]],
    ends: Mapping[str, datetime | None],
    window_min: int,
    status: dict[str, Any] | None = None,
    latest: Mapping[tuple[str, int], int] | None = None,
) -> Kpis:
    """The KPI values over the window (`ends`: clock -> newest minute, see queries.CLOCKS)."""
    event = [f for f in figures if f["metric"] in minutely.EVENT_TIME]
    kafka = [f for f in figures if f["metric"] not in minutely.EVENT_TIME]
    event_min = covered_minutes(event, ends.get(EVENT), window_min)
    kafka_min = covered_minutes(kafka, ends.get(KAFKA), window_min)
    orders = _sum(_of(figures, minutely.ORDERS, minutely.ALL), "count")
    outcomes = {s: _of(figures, minutely.OUTCOMES, minutely.dim("status", s.value)) for s in CLOSED}
    closed = sum(_sum(docs, "count") for docs in outcomes.values())
    paid = _sum(outcomes[Status.PAID], "count")
    dead = _sum(_of(figures, minutely.DEAD_LETTERS), "count")
    p50, p99 = latency(_of(figures, minutely.LATENCY, minutely.ALL))
    lag_value, live = lag(status, latest)
    return Kpis(
        orders=orders,
        orders_per_min=orders / event_min if event_min else None,
        closed=closed,
        paid=paid,
        paid_rate=paid / closed if closed else None,
        unpaid=_by_currency(outcomes[Status.UNPAID], "amount"),
        underpaid=_by_currency(outcomes[Status.UNDERPAID], "balance"),
        orphans=_sum(_of(figures, minutely.ORPHANS, minutely.ALL), "count"),
        dead_letters=dead,
        dead_letters_per_min=dead / kafka_min if kafka_min else None,
        p50_ms=p50,
        p99_ms=p99,
        lag=lag_value,
        lag_live=live,
    )


def cards(k: Kpis) -> list[Card]:
    """The KPI cards, in page order."""
    lag_help = (
        "Kafka's end offsets now minus the job's committed offsets"
        if k.lag_live
        else "Kafka did not answer: the lag the job recorded with its last batch"
    )
    return [
        Card("Orders/min", rate(k.orders_per_min), "accepted orders per minute of event time"),
        Card("Orders", f"{k.orders:,}", "accepted orders in the window (duplicates not counted)"),
        Card("Paid rate", percent(k.paid_rate), "PAID among the orders that closed"),
        Card("Closed orders", f"{k.closed:,}", "orders whose outcome became final"),
        _money("Unpaid value", k.unpaid, "amount of the orders closed UNPAID"),
        _money("Under-paid value", k.underpaid, "what the UNDERPAID orders still owe"),
        Card("Orphan payments", f"{k.orphans:,}", "payments no order claimed"),
        Card("Dead letters/min", rate(k.dead_letters_per_min), "by Kafka timestamp"),
        Card("Dead letters", f"{k.dead_letters:,}", "in the window, by Kafka timestamp"),
        Card("Latency p50", duration_ms(k.p50_ms), "Kafka timestamp to written in MongoDB"),
        Card("Latency p99", duration_ms(k.p99_ms), "Kafka timestamp to written in MongoDB"),
        Card("Job lag", NONE if k.lag is None else f"{k.lag:,}", lag_help),
    ]


def _money(label: str, by_currency: Mapping[str, int] | None, help: str) -> Card:
    """One ISO 4217 currency: its code in the label (a label is Markdown: nothing else from the
    database goes there), so the value fits a card."""
    if by_currency and len(by_currency) == 1:
        ((currency, minor),) = by_currency.items()
        if ISO_CURRENCY.fullmatch(currency):
            return Card(f"{label} ({currency})", f"{minor / 100:,.2f}", help)
    return Card(label, money(by_currency), help)


# -- the job ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobState:
    running: bool
    headline: str  # fixed text
    detail: str = ""  # with the status document's figures


def job_state(status: dict[str, Any] | None, now: datetime, stale_s: float) -> JobState:
    """Whether the job is running, from the time of its last batch."""
    if not status:
        return JobState(False, "No job has reported a batch to this database yet.")
    at = status["at"] if status["at"].tzinfo else status["at"].replace(tzinfo=timezone.utc)
    age = max(0.0, (now - at).total_seconds())
    last = f"batch {status.get('batch_id')} at {utc(at)}"
    if age <= stale_s:
        return JobState(True, "The job is running.", f"last batch {age:,.0f} s ago ({last})")
    return JobState(False, "The job has written no batch lately: stopped, or idle with no input.",
                    f"no batch for {_age(age)} ({last})")  # fmt: skip


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds:,.0f} s"


# -- the charts ---------------------------------------------------------------------------------


def _minutes(frame: pd.DataFrame) -> pd.DataFrame:
    """Every minute between the first and the last, missing ones as 0 (a gap is no data)."""
    if frame.empty:
        return frame
    full = pd.date_range(frame.index.min(), frame.index.max(), freq="min", name="minute")
    return frame.reindex(full, fill_value=0)


def _frame(rows: list[dict[str, Any]], column: str, values: str) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    df["minute"] = pd.to_datetime(df["minute"], utc=True).dt.tz_localize(None)
    table = df.pivot_table(index="minute", columns=column, values=values, aggfunc="sum")
    return _minutes(table.fillna(0))


def revenue_frame(figures: list[dict[str, Any]]) -> pd.DataFrame:
    """Per minute of event time: the amount ordered and the amount paid, per currency (major
    units)."""
    rows = [
        {"minute": f["minute"], "series": f"{name} ({f.get('currency') or '?'})",
         "value": stored_int(f.get("amount") or 0) / 100}
        for metric, name in ((minutely.ORDERS, "ordered"), (minutely.PAYMENTS, "paid"))
        for f in _of(figures, metric, minutely.ALL)
    ]  # fmt: skip
    return _frame(rows, "series", "value")


def outcomes_frame(figures: list[dict[str, Any]]) -> pd.DataFrame:
    """Orders closed per minute (of their window's close), by status."""
    rows = [
        {"minute": f["minute"], "status": f["dim"].split("=", 1)[1], "count": f.get("count", 0)}
        for f in _of(figures, minutely.OUTCOMES)
    ]
    frame = _frame(rows, "status", "count")
    order = [s.value for s in CLOSED if s.value in frame.columns]
    return frame[order] if order else frame


def reasons_frame(figures: list[dict[str, Any]]) -> pd.DataFrame:
    """Dead letters in the window by reason, most first."""
    counts: Counter[str] = Counter()
    for f in _of(figures, minutely.DEAD_LETTERS):
        counts[f["dim"].split("=", 1)[1]] += stored_int(f.get("count") or 0)
    return pd.DataFrame(counts.most_common(), columns=["reason", "count"])
