"""JSON wire format of orders and payments, apart from the model in `producers/events.py`.

- `encode(event)`: compact JSON, keys in the order of ORDER_FIELDS / PAYMENT_FIELDS (items in
  ITEM_FIELDS order), timestamps as ISO-8601 UTC with milliseconds and a trailing `Z`
  (`2026-01-01T00:00:00.000Z`), amounts as JSON integers, items as a list of objects.
- `decode_order(raw)` / `decode_payment(raw)`: the reverse; raise `ValueError(reason)` for a
  message that `validate` rejects.
- `validate(kind, raw)`: the dead-letter reason of a raw message, or None when it is a valid
  event: `contract/wire.py`'s parser, the one the streaming job runs.

The Kafka key of both topics is the order_id, utf-8 encoded (`key_of`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from contract import wire
from contract.events import (
    ORDER,
    ORDER_FIELDS,
    PAYMENT,
    PAYMENT_FIELDS,
    Event,
    F,
    Item,
    Order,
    Payment,
)

ORDERS = "orders"
PAYMENTS = "payments"
KINDS = (ORDERS, PAYMENTS)
FIELDS = {ORDERS: ORDER_FIELDS, PAYMENTS: PAYMENT_FIELDS}
CONTRACT_KIND = {ORDERS: ORDER, PAYMENTS: PAYMENT}

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


def iso(ms: int) -> str:
    """Epoch milliseconds -> `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC)."""
    secs, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


def parse_iso(text: str) -> int:
    """An RFC 3339 timestamp with an explicit offset -> epoch milliseconds (the wire parser's)."""
    return wire.parse_timestamp(text)


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


_VALUE_ONLY = b"\x00value only"  # not a key: check the value alone


def _check(
    kind: str, raw: bytes, key: bytes | None = _VALUE_ONLY
) -> tuple[str | None, dict[str, Any] | None]:
    try:
        only = key is _VALUE_ONLY
        return None, wire.parse(CONTRACT_KIND[kind], None if only else key, raw, check_key=not only)
    except wire.Invalid as exc:
        return str(exc), None


def validate(kind: str, raw: bytes, key: bytes | None = _VALUE_ONLY) -> str | None:
    """The dead-letter reason of a raw message on topic kind `orders`/`payments`, or None
    (`contract.wire.parse`, the job's own parser). With `key` (None: a keyless message) the key
    is checked too, as the job does."""
    return _check(kind, raw, key)[0]


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
        order_ts=o[F.ORDER_TS],
        produced_at=o[F.PRODUCED_AT],
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
        payment_ts=p[F.PAYMENT_TS],
        produced_at=p[F.PRODUCED_AT],
        schema_version=p[F.SCHEMA_VERSION],
    )


def decode(kind: str, raw: bytes) -> Event:
    return decode_order(raw) if kind == ORDERS else decode_payment(raw)
