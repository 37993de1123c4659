"""The per-minute figures (`metrics_minutely`): their names, keys and values. Pure.

One figure is one MongoDB document, keyed by minute + metric + dimension (+ currency for money):

    _id:       "<minute, epoch ms>|<metric>|<dim>|<currency, or ->"
    minute:    the minute's start (BSON date, UTC)
    metric:    one of METRICS below;  dim: "all" or "<name>=<value>";  currency: str | None
    <values>:  VALUES[metric] (integers; amounts in minor units), set whole on every change
    final:     true once nothing can change the figure any more (see below)

    metric        dim                      minute of                        values
    orders        all, channel=<c>         order_ts                         count, amount
    payments      all, method=<m>          payment_ts                       count, amount
    outcomes      status=<PAID|UNDERPAID|  the order's window close         count, amount, paid,
                   OVERPAID|UNPAID>        (order_ts + window): when it     balance
                                           became final, in event time
    orphans       all                      orphan close (payment_ts+skew)   count, amount
    match         all                      as outcomes and orphans          matched, orphaned
                                           (payments that became final)     (+ rate)
    dead_letters  reason=<reason>          the Kafka record's timestamp     count
    latency       all                      the Kafka record's timestamp     count, hist (+ p50_ms,
                                           (newest that changed the doc)     p99_ms)

Only accepted events count: a duplicate, a late event or a reused payment id adds nothing (the
late and reused ones count as dead letters). Event-time figures (EVENT_TIME) are final when the
watermark has passed the end of their minute: an event of that minute would be late, and every
order or orphan closing in it has closed. Figures by Kafka timestamp are never marked final: they
settle once the job has read past that minute (its lag is zero).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from contract.integers import stored_int

MINUTE_MS = 60_000
ORDERS, PAYMENTS, OUTCOMES, ORPHANS = "orders", "payments", "outcomes", "orphans"
MATCH, DEAD_LETTERS, LATENCY = "match", "dead_letters", "latency"
METRICS = (ORDERS, PAYMENTS, OUTCOMES, ORPHANS, MATCH, DEAD_LETTERS, LATENCY)
ALL = "all"
VALUES: dict[str, tuple[str, ...]] = {
    ORDERS: ("count", "amount"),
    PAYMENTS: ("count", "amount"),
    OUTCOMES: ("count", "amount", "paid", "balance"),
    ORPHANS: ("count", "amount"),
    MATCH: ("matched", "orphaned"),
    DEAD_LETTERS: ("count",),
    LATENCY: ("count",),  # and the histogram, kept apart (see sinks/minutely.py)
}
EVENT_TIME = frozenset({ORDERS, PAYMENTS, OUTCOMES, ORPHANS, MATCH})

# (minute start in epoch ms, metric, dim, currency or "") -> values in VALUES[metric] order
Key = tuple[int, str, str, str]
Tally = dict[Key, list[int]]
Figures = Iterator[tuple[Key, list[int]]]  # an event's contributions


def minute_of(ts_ms: int) -> int:
    return ts_ms - ts_ms % MINUTE_MS


def dim(name: str, value: object) -> str:
    return f"{name}={value}"


def doc_id(key: Key) -> str:
    minute, metric, dimension, currency = key
    return f"{minute}|{metric}|{dimension}|{currency or '-'}"


def add(tally: Tally, key: Key, values: Iterable[int]) -> None:
    """tally[key] += values, element-wise."""
    got = tally.get(key)
    if got is None:
        tally[key] = list(values)
    else:
        for i, v in enumerate(values):
            got[i] += v


def merge(into: Tally, other: Tally) -> Tally:
    for key, values in other.items():
        add(into, key, values)
    return into


def to_rows(tally: Tally) -> list[list[object]]:
    """A tally as JSON-able rows: [minute, metric, dim, currency, *values]."""
    return [[*key, *values] for key, values in tally.items()]


def add_rows(tally: Tally, rows: Iterable[list[object]]) -> Tally:
    """tally += rows made by `to_rows`."""
    for r in rows:
        add(
            tally,
            (stored_int(r[0]), str(r[1]), str(r[2]), str(r[3])),
            [stored_int(v) for v in r[4:]],
        )
    return tally


def is_final(metric: str, minute: int, watermark: int | None) -> bool:
    return metric in EVENT_TIME and watermark is not None and minute + MINUTE_MS <= watermark


def match_rate(matched: int, orphaned: int) -> float | None:
    """The share of payments that became final in a minute and had found their order."""
    total = matched + orphaned
    return None if total == 0 else matched / total


# -- the contributions of each accepted or closed event (the job and the truth both use them) ---


def order_accepted(ts: int, amount: int, currency: str, channel: str) -> Figures:
    m = minute_of(ts)
    yield (m, ORDERS, ALL, currency), [1, amount]
    yield (m, ORDERS, dim("channel", channel), currency), [1, amount]


def payment_accepted(ts: int, amount: int, currency: str, method: str) -> Figures:
    m = minute_of(ts)
    yield (m, PAYMENTS, ALL, currency), [1, amount]
    yield (m, PAYMENTS, dim("method", method), currency), [1, amount]


def order_closed(
    close_ts: int, status: str, amount: int, paid: int, currency: str, payments: int
) -> Figures:
    m = minute_of(close_ts)
    yield (m, OUTCOMES, dim("status", status), currency), [1, amount, paid, amount - paid]
    yield (m, MATCH, ALL, ""), [payments, 0]


def orphan_closed(close_ts: int, amount: int, currency: str) -> Figures:
    m = minute_of(close_ts)
    yield (m, ORPHANS, ALL, currency), [1, amount]
    yield (m, MATCH, ALL, ""), [0, 1]


def dead_lettered(kafka_ts: int, reason: str) -> tuple[Key, list[int]]:
    return (minute_of(kafka_ts), DEAD_LETTERS, dim("reason", reason.split(":")[0]), ""), [1]
