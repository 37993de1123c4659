"""The dashboard's pure part (scripts/dashboard/view.py and text.py): KPI values, chart frames
and what the page shows, from documents shaped as the job writes them. No MongoDB, no
Streamlit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from contract import minutely
from scripts.dashboard import text, view
from sinks.batch_stats import bucket_of, bucket_value

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
EVENT, KAFKA = view.EVENT, view.KAFKA


def fig(minute: int, metric: str, dim: str = minutely.ALL, currency: str | None = None,
        **values: Any) -> dict[str, Any]:  # fmt: skip
    """A metrics_minutely document `minute` minutes after T0."""
    return {"minute": T0 + timedelta(minutes=minute), "metric": metric, "dim": dim,
            "currency": currency, **values}  # fmt: skip


def outcome(minute: int, status: str, count: int, amount: int, paid: int, cur: str = "EUR") -> dict:
    return fig(minute, minutely.OUTCOMES, f"status={status}", cur, count=count, amount=amount,
               paid=paid, balance=amount - paid)  # fmt: skip


# -- formatting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "got, want",
    [
        (text.money({"EUR": 123_456}), "1,234.56 EUR"),
        (text.money({"USD": 5, "EUR": 100}), "1.00 EUR + 0.05 USD"),
        (text.money({}), "0"),
        (text.money(None), "0"),
        (text.amount(None, "EUR"), text.NONE),
        (text.amount(-250, "EUR"), "-2.50 EUR"),
        (text.rate(None), text.NONE),
        (text.rate(12.345), "12.3"),
        (text.percent(0.9123), "91.2%"),
        (text.percent(None), text.NONE),
        (text.duration_ms(987.4), "987 ms"),
        (text.duration_ms(12_345), "12.3 s"),
        (text.duration_ms(None), text.NONE),
        (text.utc(1_767_225_600_000), "2026-01-01 00:00:00 UTC"),
        (text.utc(datetime(2026, 1, 1, 1, 2, 3)), "2026-01-01 01:02:03 UTC"),  # naive is UTC
        (text.utc(None), text.NONE),
        (text.cut("abc", 3), "abc"),
        (text.cut("abcdef", 3), "abc… (6 chars)"),
        (text.cut(None, 3), ""),
        (text.cut("<b>x</b>", 100), "<b>x</b>"),  # text stays text: nothing is rendered
    ],
)
def test_formatting(got: str, want: str) -> None:
    assert got == want


# -- the KPIs -----------------------------------------------------------------------------------


@dataclass
class KpiCase:
    name: str
    figures: list[dict[str, Any]]
    want: dict[str, Any]
    ends: dict[str, int | None] = field(default_factory=lambda: {EVENT: 9, KAFKA: 9})
    window: int = 60
    status: dict[str, Any] | None = None
    latest: dict[tuple[str, int], int] | None = None


STATUS = {"at": T0, "batch_id": 7, "lag": 5,
          "offsets": [{"topic": "orders", "partition": 0, "end": 100, "latest": 103},
                      {"topic": "payments", "partition": 0, "end": 50, "latest": 52}]}  # fmt: skip

KPI_CASES = [
    KpiCase(
        "nothing yet",
        [],
        dict(
            orders=0,
            orders_per_min=None,
            paid_rate=None,
            p50_ms=None,
            lag=None,
            dead_letters_per_min=None,
        ),
    ),  # fmt: skip
    KpiCase(
        "orders: the total and per minute over the minutes covered (not the empty window)",
        [
            fig(0, "orders", count=30, amount=1),
            fig(9, "orders", count=10, amount=1),
            fig(9, "orders", "channel=web", count=10, amount=1),
        ],  # a dimension: not counted twice
        dict(orders=40, orders_per_min=4.0),
    ),  # fmt: skip
    KpiCase(
        "orders per minute never over more minutes than the window",
        [fig(0, "orders", count=30), fig(9, "orders", count=10)],
        dict(orders=40, orders_per_min=8.0),
        window=5,
    ),
    KpiCase(
        "paid rate: PAID among closed; unpaid amount; what under-paid orders still owe",
        [
            outcome(1, "PAID", 6, 600, 600),
            outcome(2, "UNDERPAID", 1, 100, 40),
            outcome(2, "OVERPAID", 1, 100, 150),
            outcome(3, "UNPAID", 2, 300, 0),
            outcome(3, "UNPAID", 1, 70, 0, cur="USD"),
        ],
        dict(
            closed=11,
            paid=6,
            paid_rate=6 / 11,
            unpaid={"EUR": 300, "USD": 70},
            underpaid={"EUR": 60},
        ),
    ),  # fmt: skip
    KpiCase(
        "orphans and dead letters (every reason), per minute of Kafka time",
        [
            fig(4, "orphans", count=2, amount=9),
            fig(8, "dead_letters", "reason=late", count=3),
            fig(9, "dead_letters", "reason=invalid_json", count=1),
        ],
        dict(orphans=2, dead_letters=4, dead_letters_per_min=2.0),
    ),  # fmt: skip
    KpiCase(
        "latency: percentiles of the window's histograms merged",
        [
            fig(8, "latency", count=99, hist={str(bucket_of(100)): 99}, p50_ms=1.0, p99_ms=1.0),
            fig(9, "latency", count=1, hist={str(bucket_of(5000)): 1}, p50_ms=2.0, p99_ms=2.0),
        ],
        dict(p50_ms=bucket_value(bucket_of(100)), p99_ms=bucket_value(bucket_of(100))),
    ),  # fmt: skip
    KpiCase(
        "latency without histograms: the newest minute's own",
        [
            fig(8, "latency", count=5, p50_ms=10.0, p99_ms=20.0),
            fig(9, "latency", count=5, p50_ms=11.0, p99_ms=30.0),
        ],
        dict(p50_ms=11.0, p99_ms=30.0),
    ),  # fmt: skip
    KpiCase(
        "lag: Kafka's end offsets now minus the job's",
        [],
        dict(lag=(110 - 100) + (52 - 50), lag_live=True),
        status=STATUS,
        latest={("orders", 0): 110, ("payments", 0): 52},
    ),
    KpiCase(
        "lag: the job's own figure when Kafka did not answer",
        [],
        dict(lag=5, lag_live=False),
        status=STATUS,
        latest=None,
    ),  # fmt: skip
    KpiCase(
        "lag: the job's own figure when Kafka did not know a partition",
        [],
        dict(lag=5, lag_live=False),
        status=STATUS,
        latest={("orders", 0): 110},
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", KPI_CASES, ids=lambda c: c.name)
def test_kpis(case: KpiCase) -> None:
    ends = {k: None if v is None else T0 + timedelta(minutes=v) for k, v in case.ends.items()}
    got = view.kpis(case.figures, ends, case.window, case.status, case.latest)
    assert {k: getattr(got, k) for k in case.want} == case.want


def test_cards_show_the_values_formatted_in_page_order() -> None:
    k = view.Kpis(orders=1234, orders_per_min=20.5, closed=10, paid=9, paid_rate=0.9,
                  unpaid={"EUR": 1_000_050}, underpaid={}, orphans=3, dead_letters=7,
                  dead_letters_per_min=0.25, p50_ms=900.0, p99_ms=15_000.0, lag=0,
                  lag_live=True)  # fmt: skip
    got = {c.label: c.value for c in view.cards(k)}
    assert got == {
        "Orders/min": "20.5", "Orders": "1,234", "Paid rate": "90.0%", "Closed orders": "10",
        "Unpaid value (EUR)": "10,000.50", "Under-paid value": "0", "Orphan payments": "3",
        "Dead letters/min": "0.2", "Dead letters": "7", "Latency p50": "900 ms",
        "Latency p99": "15.0 s", "Job lag": "0",
    }  # fmt: skip
    assert list(got)[:2] == ["Orders/min", "Orders"]
    several = {c.label: c.value for c in view.cards(view.Kpis(unpaid={"EUR": 1, "USD": 2}))}
    assert several["Unpaid value"] == "0.01 EUR + 0.02 USD"
    assert several["Job lag"] == text.NONE
    odd = {c.label: c.value for c in view.cards(view.Kpis(unpaid={"**x**": 5}))}
    assert odd["Unpaid value"] == "0.05 **x**"  # in the value (text), never in the label


# -- the job ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, age_s, running, detail",
    [
        (None, 0, False, ""),
        ({"at": T0, "batch_id": 3}, 4, True, "last batch 4 s ago (batch 3 at 2026-01-01 12:00:00"),
        ({"at": T0, "batch_id": 3}, 600, False, "no batch for 10 min (batch 3 at 2026-01-01"),
        ({"at": T0.replace(tzinfo=None), "batch_id": 3}, 2 * 86_400, False, "no batch for 2 d"),
    ],
)
def test_job_state(status: dict | None, age_s: int, running: bool, detail: str) -> None:
    got = view.job_state(status, T0 + timedelta(seconds=age_s), stale_s=120)
    assert got.running is running
    assert got.detail.startswith(detail) and got.headline


# -- the charts ---------------------------------------------------------------------------------


def test_revenue_frame_per_minute_with_missing_minutes_as_zero() -> None:
    frame = view.revenue_frame(
        [fig(0, "orders", currency="EUR", count=1, amount=1000),
         fig(2, "orders", currency="EUR", count=1, amount=250),
         fig(0, "orders", "channel=web", "EUR", count=1, amount=1000),  # not counted twice
         fig(2, "payments", currency="EUR", count=1, amount=500)]
    )  # fmt: skip
    assert list(frame.columns) == ["ordered (EUR)", "paid (EUR)"]
    assert frame["ordered (EUR)"].tolist() == [10.0, 0.0, 2.5]
    assert frame["paid (EUR)"].tolist() == [0.0, 0.0, 5.0]
    assert len(frame.index) == 3 and frame.index.tz is None


def test_outcomes_frame_has_the_statuses_in_order() -> None:
    frame = view.outcomes_frame(
        [outcome(0, "UNPAID", 1, 1, 0), outcome(0, "PAID", 4, 4, 4), outcome(1, "PAID", 2, 2, 2)]
    )
    assert list(frame.columns) == ["PAID", "UNPAID"]
    assert frame["PAID"].tolist() == [4, 2] and frame["UNPAID"].tolist() == [1, 0]


def test_reasons_frame_most_first_and_empty_frames() -> None:
    frame = view.reasons_frame(
        [fig(0, "dead_letters", "reason=late", count=1),
         fig(1, "dead_letters", "reason=invalid_json", count=2),
         fig(2, "dead_letters", "reason=late", count=3)]
    )  # fmt: skip
    assert frame.to_dict("records") == [{"reason": "late", "count": 4},
                                        {"reason": "invalid_json", "count": 2}]  # fmt: skip
    assert view.revenue_frame([]).empty and view.outcomes_frame([]).empty
    assert view.reasons_frame([]).empty


# -- the order lookup and the dead letters ------------------------------------------------------

OUTCOME: dict[str, Any] = {
    "_id": "o-1", "order_id": "o-1", "status": "UNDERPAID", "final": True, "amount": 1000,
    "paid": 400, "balance": 600, "currency": "EUR", "order_ts": 1_767_225_600_000,
    "payments": [{"payment_id": "p-1", "amount": 400, "method": "card",
                  "payment_ts": 1_767_225_630_000}],
    "first_payment_delay_ms": 30_000, "timing": {"first_written_at": 1_767_225_601_000,
                                                 "latency_ms": 850},
}  # fmt: skip


def test_order_cards_timing_and_payments() -> None:
    assert [(c.label, c.value) for c in text.order_cards(OUTCOME)] == [
        ("Status", "UNDERPAID"), ("Amount", "10.00 EUR"), ("Paid", "4.00 EUR"),
        ("Balance", "6.00 EUR"),
    ]  # fmt: skip
    timing = text.order_timing(OUTCOME)
    assert "2026-01-01 00:00:00 UTC" in timing and "30.0 s" in timing and "850 ms" in timing
    lines = text.payment_lines(OUTCOME["payments"], "EUR").splitlines()
    assert lines[0].split() == ["payment_id", "amount", "method", "payment", "time"]
    assert lines[1].split() == ["p-1", "4.00", "EUR", "card", "2026-01-01", "00:00:30", "UTC"]
    assert text.payment_lines([]) == "none"
    pending = {**OUTCOME, "final": False, "payments": [], "first_payment_delay_ms": None}
    assert "no (its window is still open)" in text.order_timing(pending)


def test_dead_letter_rows_cut_long_values_and_keep_them_text() -> None:
    doc = {"_id": "orders:1:42", "reason": "invalid_json", "key": "k" * 50,
           "preview": "<script>" + "x" * 500, "dead_lettered_at": 1_767_225_600_000}  # fmt: skip
    (row,) = text.dead_letter_rows([doc], limit=20)
    assert row == {
        "when": "2026-01-01 00:00:00 UTC", "reason": "invalid_json", "where": "orders:1:42",
        "key": "k" * 40 + "… (50 chars)", "value": "<script>xxxxxxxxxxxx… (508 chars)",
    }  # fmt: skip
    (empty,) = text.dead_letter_rows([{"_id": "payments:0:1", "reason": "invalid_json"}])
    assert empty["value"] == "" and empty["key"] == ""
