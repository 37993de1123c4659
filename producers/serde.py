"""JSON wire format of orders and payments, apart from the model in `producers/events.py`.

- `encode(event)`: compact JSON, keys in the order of ORDER_FIELDS / PAYMENT_FIELDS (items in
  ITEM_FIELDS order), timestamps as ISO-8601 UTC with milliseconds and a trailing `Z`
  (`2026-01-01T00:00:00.000Z`), amounts as JSON integers, items as a list of objects.
- `decode_order(raw)` / `decode_payment(raw)`: the reverse; raise `ValueError(reason)` for a
  message that `validate` rejects.
- `validate(kind, raw)`: the dead-letter reason of a raw message (the first failing check:
  invalid_json -> missing_field:<f> -> wrong_type:<f> -> unknown_schema_version ->
  negative_amount), or None when it is a valid event. Same order as `streaming/source.py`.

The Kafka key of both topics is the order_id, utf-8 encoded (`key_of`).
"""

from __future__ import annotations

import calendar
import json
import re
import time
from typing import Any

from contract.events import (
    FIELD_TYPES,
    ORDER_FIELDS,
    PAYMENT_FIELDS,
    SCHEMA_VERSION,
    Event,
    F,
    Item,
    Order,
    Payment,
    Reason,
    reason,
)

ORDERS = "orders"
PAYMENTS = "payments"
KINDS = (ORDERS, PAYMENTS)
FIELDS = {ORDERS: ORDER_FIELDS, PAYMENTS: PAYMENT_FIELDS}

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def iso(ms: int) -> str:
    """Epoch milliseconds -> `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC)."""
    secs, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


def parse_iso(text: str) -> int:
    """An ISO-8601 timestamp with a `Z` or `+hh:mm` offset -> epoch milliseconds.

    Fractions beyond milliseconds are truncated. Raises ValueError for anything else."""
    if not isinstance(text, str):
        raise ValueError(f"not a timestamp string: {text!r}")
    m = _ISO.match(text)
    if not m:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and sec < 60):
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    try:
        calendar.weekday(year, month, day)  # rejects 2026-02-30
    except ValueError as exc:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}") from exc
    frac = (m.group(7) or "0")[:3].ljust(3, "0")
    offset = 0
    tz = m.group(8)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        offset = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    secs = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0)) - offset
    return secs * 1000 + int(frac)


def key_of(order_id: str) -> bytes:
    return order_id.encode("utf-8")


def order_dict(o: Order) -> dict[str, Any]:
    return {
        F.ORDER_ID: o.order_id,
        F.CUSTOMER_ID: o.customer_id,
        F.STORE_ID: o.store_id,
        F.CHANNEL: o.channel,
        F.ITEMS: [
            {
                F.PRODUCT_ID: i.product_id,
                F.CATEGORY: i.category,
                F.QUANTITY: i.quantity,
                F.UNIT_PRICE: i.unit_price,
            }
            for i in o.items
        ],
        F.AMOUNT: o.amount,
        F.CURRENCY: o.currency,
        F.ORDER_TS: iso(o.order_ts),
        F.PRODUCED_AT: iso(o.produced_at),
        F.SCHEMA_VERSION: o.schema_version,
    }


def payment_dict(p: Payment) -> dict[str, Any]:
    return {
        F.PAYMENT_ID: p.payment_id,
        F.ORDER_ID: p.order_id,
        F.METHOD: p.method,
        F.AMOUNT: p.amount,
        F.CURRENCY: p.currency,
        F.PAYMENT_TS: iso(p.payment_ts),
        F.PRODUCED_AT: iso(p.produced_at),
        F.SCHEMA_VERSION: p.schema_version,
    }


def to_dict(event: Event) -> dict[str, Any]:
    return order_dict(event) if isinstance(event, Order) else payment_dict(event)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes, keys in insertion order."""
    return _dumps(obj).encode("ascii")


def encode(event: Event) -> bytes:
    return dumps(to_dict(event))


def kind_of(event: Event) -> str:
    return ORDERS if isinstance(event, Order) else PAYMENTS


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "long":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "items":
        return isinstance(value, list)
    if kind == "timestamp":
        try:
            parse_iso(value)
        except ValueError:
            return False
        return True
    raise ValueError(f"unknown field type {kind!r}")


def _check(kind: str, raw: bytes) -> tuple[str | None, dict[str, Any] | None]:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return reason(Reason.INVALID_JSON), None
    if not isinstance(obj, dict):
        return reason(Reason.INVALID_JSON), None
    fields = FIELDS[kind]
    for name in fields:
        if name not in obj:
            return reason(Reason.MISSING_FIELD, name), None
    for name in fields:
        if not _type_ok(FIELD_TYPES[name], obj[name]):
            return reason(Reason.WRONG_TYPE, name), None
    if obj[F.SCHEMA_VERSION] != SCHEMA_VERSION:
        return reason(Reason.UNKNOWN_SCHEMA_VERSION), None
    if obj[F.AMOUNT] < 0:
        return reason(Reason.NEGATIVE_AMOUNT), None
    return None, obj


def validate(kind: str, raw: bytes) -> str | None:
    """The dead-letter reason of a raw message on topic kind `orders`/`payments`, or None."""
    return _check(kind, raw)[0]


def decode_order(raw: bytes) -> Order:
    why, o = _check(ORDERS, raw)
    if o is None:
        raise ValueError(why)
    items = tuple(
        Item(i[F.PRODUCT_ID], i[F.CATEGORY], int(i[F.QUANTITY]), int(i[F.UNIT_PRICE]))
        for i in o[F.ITEMS]
    )
    return Order(
        order_id=o[F.ORDER_ID],
        customer_id=o[F.CUSTOMER_ID],
        store_id=o[F.STORE_ID],
        channel=o[F.CHANNEL],
        items=items,
        amount=o[F.AMOUNT],
        currency=o[F.CURRENCY],
        order_ts=parse_iso(o[F.ORDER_TS]),
        produced_at=parse_iso(o[F.PRODUCED_AT]),
        schema_version=o[F.SCHEMA_VERSION],
    )


def decode_payment(raw: bytes) -> Payment:
    why, p = _check(PAYMENTS, raw)
    if p is None:
        raise ValueError(why)
    return Payment(
        payment_id=p[F.PAYMENT_ID],
        order_id=p[F.ORDER_ID],
        method=p[F.METHOD],
        amount=p[F.AMOUNT],
        currency=p[F.CURRENCY],
        payment_ts=parse_iso(p[F.PAYMENT_TS]),
        produced_at=parse_iso(p[F.PRODUCED_AT]),
        schema_version=p[F.SCHEMA_VERSION],
    )


def decode(kind: str, raw: bytes) -> Event:
    return decode_order(raw) if kind == ORDERS else decode_payment(raw)
