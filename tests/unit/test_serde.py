"""The wire format: ISO timestamps, encode/decode round trip, validation reasons in check order."""

from __future__ import annotations

import json

import pytest

from contract.events import Item, Order, Payment
from producers import serde

ORDER = Order(
    order_id="o-1",
    customer_id="c-1",
    store_id="s-1",
    channel="web",
    items=(Item("sku-1", "toys", 2, 150), Item("sku-2", "books", 1, 999)),
    amount=1299,
    currency="EUR",
    order_ts=1_767_225_600_000,
    produced_at=1_767_225_600_042,
)
PAYMENT = Payment("p-1", "o-1", "card", 1299, "EUR", 1_767_225_660_500, 1_767_225_660_501)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_767_225_600_000, "2026-01-01T00:00:00.000Z"),
        (1_767_225_600_007, "2026-01-01T00:00:00.007Z"),
        (1_767_225_599_999, "2025-12-31T23:59:59.999Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
    ],
)
def test_iso_and_back(ms: int, text: str) -> None:
    assert serde.iso(ms) == text
    assert serde.parse_iso(text) == ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-01-01T01:00:00.000+01:00", 1_767_225_600_000),
        ("2026-01-01T00:00:00Z", 1_767_225_600_000),
        ("2026-01-01T00:00:00.1234Z", 1_767_225_600_123),
    ],
)
def test_parse_iso_accepts_other_iso_forms(text: str, ms: int) -> None:
    assert serde.parse_iso(text) == ms


@pytest.mark.parametrize(
    "text", ["2026-01-01", "2026-01-01 00:00:00Z", "2026-02-30T00:00:00Z", "yesterday", "", 5]
)
def test_parse_iso_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        serde.parse_iso(text)  # type: ignore[arg-type]


def test_encode_is_compact_ordered_json() -> None:
    raw = serde.encode(PAYMENT)
    assert raw == (
        b'{"payment_id":"p-1","order_id":"o-1","method":"card","amount":1299,"currency":"EUR",'
        b'"payment_ts":"2026-01-01T00:01:00.500Z","produced_at":"2026-01-01T00:01:00.501Z",'
        b'"schema_version":1}'
    )
    doc = json.loads(serde.encode(ORDER))
    assert list(doc) == list(serde.FIELDS[serde.ORDERS])
    assert doc["items"][0] == {
        "product_id": "sku-1", "category": "toys", "quantity": 2, "unit_price": 150
    }  # fmt: skip
    assert doc["amount"] == 1299 and doc["order_ts"] == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize("event", [ORDER, PAYMENT])
def test_round_trip(event: Order | Payment) -> None:
    kind = serde.kind_of(event)
    raw = serde.encode(event)
    assert serde.validate(kind, raw) is None
    assert serde.decode(kind, raw) == event
    assert serde.key_of(event.order_id) == b"o-1"


def _payment(**changes: object) -> bytes:
    doc = serde.payment_dict(PAYMENT)
    for k, v in changes.items():
        if v is KeyError:
            del doc[k]
        else:
            doc[k] = v
    return serde.dumps(doc)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "invalid_json"),
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (b"\xff\xfe", "invalid_utf8"),
        (_payment(amount=KeyError), "missing_field:amount"),
        (_payment(payment_id=KeyError, amount=KeyError), "missing_field:payment_id"),
        (_payment(amount="1299"), "wrong_type:amount"),
        (_payment(amount=12.5), "wrong_type:amount"),
        (_payment(amount=True), "wrong_type:amount"),
        (_payment(amount=None), "wrong_type:amount"),
        (_payment(payment_ts=1_767_225_660_500), "wrong_type:payment_ts"),
        (_payment(payment_ts="soon"), "wrong_type:payment_ts"),
        (_payment(method=3, amount="x"), "wrong_type:method"),
        (_payment(schema_version=2, amount="x"), "wrong_type:amount"),
        (_payment(schema_version=2, amount=-5), "unknown_schema_version"),
        (_payment(amount=-5), "negative_amount"),
        (_payment(amount=0), None),
    ],
)
def test_validate_names_the_first_failing_check(raw: bytes, reason: str | None) -> None:
    assert serde.validate(serde.PAYMENTS, raw) == reason


def test_validate_order_items_must_be_an_array() -> None:
    doc = serde.order_dict(ORDER)
    doc["items"] = {"product_id": "x"}
    assert serde.validate(serde.ORDERS, serde.dumps(doc)) == "wrong_type:items"
    # a payment is not an order
    assert serde.validate(serde.ORDERS, serde.encode(PAYMENT)) == "missing_field:customer_id"


def test_decode_rejects_invalid() -> None:
    with pytest.raises(ValueError, match="negative_amount"):
        serde.decode_payment(_payment(amount=-1))
