"""The wire parser (contract/wire.py): every class of hostile input gets its named reason, valid
input gets typed contract fields only, and nothing thrown at it raises anything but Invalid."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import wire
from contract.events import ORDER, PAYMENT, F, Reason
from producers import serde
from tests.unit.test_serde import ORDER as AN_ORDER
from tests.unit.test_serde import PAYMENT as A_PAYMENT

PAY = serde.payment_dict(A_PAYMENT)
ORD = serde.order_dict(AN_ORDER)
PAY_TEXT = serde.dumps(PAY).decode()


def _pay(**changes: Any) -> bytes:
    return json.dumps({**PAY, **changes}).encode()


def _reason(value: bytes | None, key: bytes | None = b"o-1", kind: str = PAYMENT, **kw: Any) -> str:
    return wire.check(kind, key, value, **kw) or "valid"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"o-1", b'{"payment_id":"\xff"}'),  # a stray byte
        (b"o-1", PAY_TEXT.replace('"card"', '"caf\xe9"').encode("latin-1")),  # latin-1
        (b"o-1", PAY_TEXT.encode("utf-16")),  # another encoding, BOM first
        (b"o-1", b'{"a":"\xed\xa0\x80"}'),  # an encoded surrogate (CESU-8)
        (b"o-1", b'{"a":"\xc0\xaf"}'),  # an overlong encoding
        (
            b"o-1",
            json.dumps({**PAY, "method": "\ud800"}, ensure_ascii=False).encode(
                "utf-8", "surrogatepass"
            ),
        ),  # a raw surrogate written by a lax encoder
    ],
)
def test_value_that_is_not_utf8(key: bytes, value: bytes) -> None:
    assert _reason(value, key) == "invalid_utf8"


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\udc00\\ud800", "x\\ud83d", "\\ud83dx"])
def test_lone_surrogate_escapes_anywhere(escape: str) -> None:
    in_value = PAY_TEXT.replace('"card"', f'"{escape}"').encode()
    in_unknown_key = PAY_TEXT.replace("{", f'{{"{escape}":1,', 1).encode()
    assert _reason(in_value) == "invalid_utf8"
    assert _reason(in_unknown_key) == "invalid_utf8"
    # a proper pair is one character, and fine
    assert _reason(PAY_TEXT.replace('"card"', '"\\ud83d\\ude00"').encode()) == "valid"


@pytest.mark.parametrize("key", [b"\xff", b"o-\xc3", b"\x80abc"])
def test_key_that_is_not_utf8(key: bytes) -> None:
    assert _reason(_pay(), key) == "invalid_utf8:key"
    assert _reason(b"not json", key) == "invalid_utf8:key"  # the key is checked first


@pytest.mark.parametrize(
    "text",
    [
        PAY_TEXT + " x",  # trailing data
        PAY_TEXT + PAY_TEXT,  # two objects
        PAY_TEXT + "\n" + PAY_TEXT,
        PAY_TEXT[:-1] + "/* c */}",  # a comment
        PAY_TEXT.replace('"', "'"),  # single quotes
        PAY_TEXT.replace('"amount":', '"amount":NaN,"x":'),  # NaN
        PAY_TEXT.replace('"amount":', '"amount":Infinity,"x":'),
        PAY_TEXT.replace('"amount":', '"amount":0', 1),  # a leading zero
        PAY_TEXT.replace('"card"', '"ca\x00rd"'),  # a raw NUL inside a string
        PAY_TEXT + "\x00",  # a NUL after the object
        PAY_TEXT.replace('"card"', '"ca\nrd"'),  # a raw control character
        PAY_TEXT.replace("{", '{"amount":1,', 1),  # a key given twice
        "[" * 100_000 + "]" * 100_000,  # nesting no parser should follow
        "",
        "   ",
    ],
)
def test_what_a_strict_parser_rejects_is_invalid_json(text: str) -> None:
    assert _reason(text.encode()) == "invalid_json"


def test_no_value_is_invalid_json() -> None:
    assert _reason(None) == "invalid_json"


@pytest.mark.parametrize("text", ["[1, 2]", '"a string"', "12", "null", "true"])
def test_json_that_is_not_an_object(text: str) -> None:
    assert _reason(text.encode()) == "not_an_object"


def test_whitespace_around_the_object_and_key_escapes_are_fine() -> None:
    assert _reason(b"  \n" + _pay() + b"\r\n ") == "valid"
    escaped = PAY_TEXT.replace('"order_id"', '"\\u006frder_id"').encode()
    fields = wire.parse(PAYMENT, b"o-1", escaped)
    assert fields[F.ORDER_ID] == PAY[F.ORDER_ID]


@pytest.mark.parametrize(
    ("changes", "want"),
    [
        ({"amount": "1299"}, "wrong_type:amount"),  # a string where the contract says number
        ({"amount": 12.0}, "wrong_type:amount"),  # a float for an integer field
        ({"amount": 1e3}, "wrong_type:amount"),
        ({"amount": -0.0}, "wrong_type:amount"),
        ({"amount": True}, "wrong_type:amount"),
        ({"amount": 2**63}, "out_of_range:amount"),  # beyond 64 bits
        ({"amount": -(2**63) - 1}, "out_of_range:amount"),
        ({"amount": 10**40}, "out_of_range:amount"),
        ({"payment_id": 12345}, "wrong_type:payment_id"),  # a number where it says string
        ({"payment_id": ["p"]}, "wrong_type:payment_id"),
        ({"payment_id": ""}, "invalid_value:payment_id"),
        ({"payment_id": "p\x00"}, "invalid_value:payment_id"),  # NUL, escaped in the JSON
        ({"payment_id": "p\u0085"}, "invalid_value:payment_id"),
        ({"payment_id": "p" * 300}, "invalid_value:payment_id"),
        ({"schema_version": 1.0}, "wrong_type:schema_version"),
        ({"amount": 0}, "valid"),
        ({"amount": 2**53 - 1}, "valid"),  # contract.events.MAX_AMOUNT
        ({"amount": 2**53}, "out_of_range:amount"),
        ({"amount": 2**63 - 1}, "out_of_range:amount"),
    ],
)
def test_numbers_and_json_types(changes: dict[str, Any], want: str) -> None:
    assert _reason(_pay(**changes)) == want


def test_minus_zero_integer_is_zero() -> None:
    text = PAY_TEXT.replace(f'"amount":{PAY["amount"]}', '"amount":-0').encode()
    assert wire.parse(PAYMENT, b"o-1", text)[F.AMOUNT] == 0


@pytest.mark.parametrize("digits", ["9" * 20, "9" * 5000, "-" + "9" * 5000, "1" + "0" * 100_000])
def test_huge_integer_text_is_out_of_range_whatever_its_length(digits: str) -> None:
    """Past 4,300 digits Python refuses to convert an integer: the verdict must not depend on it."""
    text = PAY_TEXT.replace(f'"amount":{PAY["amount"]}', f'"amount":{digits}').encode()
    assert _reason(text) == "out_of_range:amount"


@pytest.mark.parametrize(
    ("ts", "ms"),
    [
        ("2026-01-01T00:00:00Z", 1_767_225_600_000),
        ("2026-01-01T00:00:00.5Z", 1_767_225_600_500),
        ("2026-01-01T00:00:00.123456789Z", 1_767_225_600_123),
        ("2026-01-01t00:00:00z", 1_767_225_600_000),
        ("2026-01-01T01:30:00+01:30", 1_767_225_600_000),
        ("2025-12-31T23:00:00-01:00", 1_767_225_600_000),
    ],
)
def test_accepted_timestamps(ts: str, ms: int) -> None:
    assert wire.parse(PAYMENT, b"o-1", _pay(payment_ts=ts))[F.PAYMENT_TS] == ms


@pytest.mark.parametrize(
    "ts",
    [
        "2026-01-01T00:00:00",  # no offset
        "2026-01-01 00:00:00Z",  # a space
        "2026-01-01",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-12-31T23:59:60Z",  # a leap second
        "2026-01-01T00:00:00+25:00",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00Z ",
        "1767225600000",
        "",
    ],
)
def test_rejected_timestamps(ts: str) -> None:
    assert _reason(_pay(payment_ts=ts)) == "wrong_type:payment_ts"
    assert _reason(_pay(payment_ts=1_767_225_600_000)) == "wrong_type:payment_ts"


def test_unknown_fields_are_dropped_whatever_their_names() -> None:
    hostile = {"$set": {"status": "PAID"}, "promo.code": "X", "a\x00b": 1, "deep": [[[[1]]]]}
    fields = wire.parse(ORDER, b"o-1", json.dumps({**ORD, **hostile}).encode())
    assert set(fields) == set(serde.FIELDS[serde.ORDERS])
    assert fields[F.ORDER_TS] == AN_ORDER.order_ts  # typed: epoch ms
    assert fields[F.ITEMS][0][F.QUANTITY] == AN_ORDER.items[0].quantity


@pytest.mark.parametrize("key", [None, b"", b"o-2", b"O-1", b"o-1 "])
def test_key_that_is_not_the_order_id(key: bytes | None) -> None:
    assert _reason(_pay(), key) == "key_mismatch"
    assert _reason(_pay(amount="x"), key) == "wrong_type:amount"  # the value is checked first


def test_too_large_and_future_event_time() -> None:
    big = _pay(note="x" * 2000)
    assert _reason(big, max_bytes=1000) == "too_large"
    assert _reason(big, max_bytes=10_000) == "valid"
    ts = A_PAYMENT.payment_ts
    assert _reason(_pay(), kafka_ts=ts - 10_000, max_future_ms=5_000) == "future_event_time"
    assert _reason(_pay(), kafka_ts=ts - 10_000, max_future_ms=60_000) == "valid"


def test_preview_is_printable_and_marks_bad_bytes() -> None:
    assert wire.preview(b'{"a":"\xff\x00b"}') == '{"a":"\\xff\\x00b"}'
    assert wire.preview(None) is None
    assert wire.preview(b"x" * 2000, limit=10) == "x" * 10 + "..."


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=20)))
def test_any_bytes_give_a_reason_or_fields(value: bytes, key: bytes | None) -> None:
    for kind in (ORDER, PAYMENT):
        try:
            wire.parse(kind, key, value)
        except wire.Invalid as exc:
            assert str(exc).split(":")[0] in {r.value for r in Reason}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(PAY) + ["x", "$y"]), _json, max_size=10))
def test_any_json_object_gives_a_reason_or_typed_fields(obj: dict[str, Any]) -> None:
    merged = {**PAY, **obj}
    try:
        value = json.dumps(merged).encode("utf-8", "surrogatepass")
    except ValueError:
        return  # NaN etc. json.dumps refuses by default here: covered above
    key = merged[F.ORDER_ID].encode("utf-8", "surrogatepass") if isinstance(
        merged[F.ORDER_ID], str) else None  # fmt: skip
    try:
        fields = wire.parse(PAYMENT, key, value)
    except wire.Invalid:
        return
    assert set(fields) == set(serde.FIELDS[serde.PAYMENTS])
    assert all(isinstance(fields[f], int) for f in (F.AMOUNT, F.PAYMENT_TS, F.SCHEMA_VERSION))
    assert all(isinstance(fields[f], str) and fields[f] for f in (F.PAYMENT_ID, F.ORDER_ID))


def _with_extra(levels: int, opener: str = "[", closer: str = "]") -> bytes:
    """A valid payment with an unknown field nested `levels` deep (the object adds one)."""
    return PAY_TEXT.replace(
        "{", '{"extra":' + opener * levels + "1" + closer * levels + ",", 1
    ).encode()


@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ('{"a":', "}")])
def test_nesting_is_judged_by_counting_not_by_the_stack(opener: str, closer: str) -> None:
    """MAX_DEPTH levels pass and one more is invalid_json, however deep the caller's stack is
    (the truth and Spark's Python worker call from different depths)."""
    import sys

    def at_depth(frames: int, value: bytes) -> str:
        return _reason(value) if frames == 0 else at_depth(frames - 1, value)

    within = _with_extra(wire.MAX_DEPTH - 1, opener, closer)
    beyond = _with_extra(wire.MAX_DEPTH, opener, closer)
    deep_stack = sys.getrecursionlimit() - wire.MAX_DEPTH * 3
    for frames in (0, 300, deep_stack):
        assert at_depth(frames, within) == "valid"
        assert at_depth(frames, beyond) == "invalid_json"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    value = PAY_TEXT.replace("{", '{"note":"' + "[{" * 1000 + '\\"]",', 1).encode()
    assert _reason(value) == "valid"
