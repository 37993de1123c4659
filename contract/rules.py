"""The reconciliation rules, as plain functions of event times and amounts.

Both the streaming state step (`streaming/step.py`) and the producers' ground truth
(`producers/truth.py`) decide with these, so the rules live once. Times are epoch milliseconds.

- A payment belongs to its order when
  `order_ts - skew_before <= payment_ts <= order_ts + window_after`.
- An event is late when its event time is below the watermark; late events are dead letters.
- An order's outcome becomes final when the watermark passes `order_ts + window_after`.
- A payment that no order claims becomes an `ORPHAN_PAYMENT` once the watermark passes
  `payment_ts + skew_before`: any order it could still belong to would be late by then.
- The first copy of an order_id or payment_id wins; later copies change nothing. After an order
  closes (or a payment is orphaned) its ids are remembered until the watermark passes the close
  time plus `dedup_horizon`, so a copy arriving in that time is still a duplicate; after it, the
  ids are forgotten (bounded state) and a copy would count as new.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    PENDING = "PENDING"  # window open, nothing paid yet (never final)
    PAID = "PAID"
    UNDERPAID = "UNDERPAID"
    OVERPAID = "OVERPAID"
    UNPAID = "UNPAID"  # window closed with nothing paid
    ORPHAN_PAYMENT = "ORPHAN_PAYMENT"


@dataclass(frozen=True, slots=True)
class Rules:
    window_after_ms: int = 15 * 60_000
    skew_before_ms: int = 2 * 60_000
    allowed_lateness_ms: int = 15 * 60_000
    dedup_horizon_ms: int = 24 * 3600_000

    @classmethod
    def from_seconds(
        cls,
        window_after_s: float,
        skew_before_s: float,
        lateness_s: float,
        dedup_horizon_s: float = 24 * 3600,
    ) -> Rules:
        return cls(
            int(window_after_s * 1000),
            int(skew_before_s * 1000),
            int(lateness_s * 1000),
            int(dedup_horizon_s * 1000),
        )

    def matches(self, order_ts: int, payment_ts: int) -> bool:
        return order_ts - self.skew_before_ms <= payment_ts <= order_ts + self.window_after_ms

    def order_close_ts(self, order_ts: int) -> int:
        return order_ts + self.window_after_ms

    def orphan_close_ts(self, payment_ts: int) -> int:
        return payment_ts + self.skew_before_ms

    def forget_ts(self, close_ts: int) -> int:
        """When the ids of what closed at `close_ts` may be forgotten."""
        return close_ts + self.dedup_horizon_ms

    def watermark(self, max_event_ts: int) -> int:
        """The watermark Spark derives from the largest event time seen."""
        return max_event_ts - self.allowed_lateness_ms

    @staticmethod
    def is_late(event_ts: int, watermark: int) -> bool:
        return event_ts < watermark

    @staticmethod
    def is_closed(close_ts: int, watermark: int) -> bool:
        return close_ts < watermark


def status_of(amount: int, paid: int, final: bool) -> Status:
    """An order's status from what it costs and what was paid for it."""
    if paid == 0:
        return Status.UNPAID if final else Status.PENDING
    if paid == amount:
        return Status.PAID
    return Status.UNDERPAID if paid < amount else Status.OVERPAID
