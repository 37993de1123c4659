"""What the page shows as text: values formatted, an order's outcome, dead letters. Pure.

Whatever comes from the database is returned as plain strings; the page shows them as text
(metric values, `st.text`, `st.code`, `st.dataframe`), never as Markdown or HTML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

NONE = "—"  # shown when there is no figure yet


@dataclass(frozen=True)
class Card:
    label: str
    value: str
    help: str = ""


# -- formatting ---------------------------------------------------------------------------------


def money(by_currency: Mapping[str, int] | None) -> str:
    """Minor units (cents) per currency, e.g. `1,234.50 EUR`; several joined with ` + `."""
    if not by_currency:
        return "0"
    return " + ".join(f"{_major(v)} {c}" for c, v in sorted(by_currency.items()))


def _major(minor: int) -> str:
    """Minor units as major units with two decimals, exactly (a float would round past 2**53)."""
    major, cents = divmod(abs(minor), 100)
    return f"{'-' if minor < 0 else ''}{major:,}.{cents:02d}"


def amount(minor: int | None, currency: str | None) -> str:
    return NONE if minor is None else money({currency or "?": minor})


def rate(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{value:,.{digits}f}"


def percent(share: float | None) -> str:
    return NONE if share is None else f"{share * 100:.1f}%"


def duration_ms(ms: float | None) -> str:
    if ms is None:
        return NONE
    return f"{ms:,.0f} ms" if ms < 10_000 else f"{ms / 1000:,.1f} s"


def utc(ts: datetime | int | None) -> str:
    """A BSON date or epoch milliseconds as `YYYY-MM-DD HH:MM:SS UTC`."""
    if ts is None:
        return NONE
    if isinstance(ts, int):
        ts = datetime.fromtimestamp(ts / 1000, timezone.utc)
    elif ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def cut(text: str | None, limit: int) -> str:
    """At most `limit` characters; a longer text ends with how long it was."""
    if text is None:
        return ""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} chars)"


# -- the order lookup and the dead letters ------------------------------------------------------


def order_cards(outcome: dict[str, Any]) -> list[Card]:
    cur = outcome.get("currency")
    return [
        Card("Status", str(outcome.get("status")), "final" if outcome.get("final") else "open"),
        Card("Amount", amount(outcome.get("amount"), cur)),
        Card("Paid", amount(outcome.get("paid"), cur)),
        Card("Balance", amount(outcome.get("balance"), cur), "amount minus paid"),
    ]


def order_timing(outcome: dict[str, Any]) -> str:
    timing = outcome.get("timing") or {}
    delay = outcome.get("first_payment_delay_ms")
    lines = [
        ("order time", utc(outcome.get("order_ts"))),
        ("first payment after", NONE if delay is None else duration_ms(delay)),
        ("first written", utc(timing.get("first_written_at"))),
        ("Kafka to written", duration_ms(timing.get("latency_ms"))),
        ("final", "yes" if outcome.get("final") else "no (its window is still open)"),
    ]
    return "\n".join(f"{k:<20} {v}" for k, v in lines)


def payment_lines(payments: Iterable[dict[str, Any]], currency: str | None = None) -> str:
    """A fixed-width table of payments (shown as plain text)."""
    rows = [
        (cut(str(p.get("payment_id")), 40), amount(p.get("amount"), p.get("currency") or currency),
         str(p.get("method")), utc(p.get("payment_ts")))
        for p in payments
    ]  # fmt: skip
    if not rows:
        return "none"
    head = ("payment_id", "amount", "method", "payment time")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]
    )


def dead_letter_rows(docs: Iterable[dict[str, Any]], limit: int = 120) -> list[dict[str, str]]:
    """One row per dead letter, key and value cut to `limit` characters."""
    return [
        {"when": utc(d.get("dead_lettered_at")), "reason": str(d.get("reason")),
         "where": str(d.get("_id")), "key": cut(d.get("key"), 40),
         "value": cut(d.get("preview"), limit)}
        for d in docs
    ]  # fmt: skip
