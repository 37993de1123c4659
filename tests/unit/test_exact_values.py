"""Every accepted value reaches MongoDB exactly, and every grammar of the contract is ASCII.

Amounts at the edges of the documented range (contract.events.MAX_AMOUNT), sums past 2**53 and
past 64 bits, integer columns through Arrow and pandas as Spark hands them to a shape, and text
with digits or letters from outside ASCII in every field that has a grammar (RFC 3339 timestamps,
ISO 4217 currencies, JSON numbers). A property test holds the parser's timestamp and currency
verdicts against reference grammars written with explicit ASCII characters."""

from __future__ import annotations

import calendar
import json
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import avro, minutely, wire
from contract.events import MAX_AMOUNT, ORDER, PAYMENT, F
from contract.integers import INT64, storable, stored_int
from contract.outputs import to_json
from contract.rules import Rules
from producers import serde
from scripts.dashboard.text import money
from sinks.live_docs import fold
from streaming.frames import split_events
from streaming.source import PARSED, SHAPE_INTEGERS
from streaming.step import EVENT_COLUMNS, empty_state, step
from tests.unit.test_serde import ORDER as AN_ORDER
from tests.unit.test_serde import PAYMENT as A_PAYMENT

PAY = serde.payment_dict(A_PAYMENT)
ORD = serde.order_dict(AN_ORDER)
RULES = Rules.from_seconds(900, 120, 900)

# Decimal digits (Unicode category Nd) and digit-like characters that are not ASCII: `\d`,
# `str.isdigit` or `int()` take some of each.
FOREIGN_DIGITS = {
    "full-width": "０１２３４５６７８９",
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "extended arabic-indic": "۰۱۲۳۴۵۶۷۸۹",
    "devanagari": "०१२३४५६७८९",
    "bengali": "০১২৩৪৫৬৭৮৯",
    "mathematical bold": "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗",
    "superscript": "⁰¹²³⁴⁵⁶⁷⁸⁹",
    "subscript": "₀₁₂₃₄₅₆₇₈₉",
}


def _reason(kind: str, obj: dict[str, Any], key: bytes = b"o-1") -> str:
    return wire.check(kind, key, json.dumps(obj).encode()) or "valid"


def _foreign(text: str, digits: str) -> list[str]:
    """`text` with each of its ASCII digits in turn written in `digits` instead."""
    return [text[:i] + digits[int(c)] + text[i + 1 :] for i, c in enumerate(text) if c.isascii()
            and c.isdigit()]  # fmt: skip


# -- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "want"),
    [
        (2**53 - 1, "valid"),  # MAX_AMOUNT
        (2**53, "out_of_range:amount"),
        (2**53 + 1, "out_of_range:amount"),
        (2**62, "out_of_range:amount"),
        (2**63 - 1, "out_of_range:amount"),
        (2**63, "out_of_range:amount"),  # beyond 64 bits: the type's own range
        (0, "valid"),
        (-1, "negative_amount"),
    ],
)
def test_an_amount_is_accepted_from_0_to_max_amount(amount: int, want: str) -> None:
    assert MAX_AMOUNT == 2**53 - 1
    assert _reason(PAYMENT, {**PAY, F.AMOUNT: amount}) == want
    assert _reason(ORDER, {**ORD, F.AMOUNT: amount}) == want
    if want == "valid":
        assert wire.parse(PAYMENT, b"o-1", json.dumps({**PAY, F.AMOUNT: amount}).encode())[
            F.AMOUNT
        ] == amount  # fmt: skip


def test_avro_records_have_the_same_amount_range() -> None:
    record = {**PAY, F.PAYMENT_TS: 1_767_225_600_000, F.PRODUCED_AT: 1_767_225_600_000}
    assert avro.fields_of(PAYMENT, {**record, F.AMOUNT: MAX_AMOUNT})[F.AMOUNT] == MAX_AMOUNT
    with pytest.raises(wire.Invalid, match="out_of_range:amount"):
        avro.fields_of(PAYMENT, {**record, F.AMOUNT: MAX_AMOUNT + 1})


def test_item_integers_keep_their_whole_64_bit_range() -> None:
    item = {**ORD[F.ITEMS][0], F.UNIT_PRICE: 2**63 - 1, F.QUANTITY: 2**53 + 1}
    fields = wire.parse(ORDER, b"o-1", json.dumps({**ORD, F.ITEMS: [item]}).encode())
    assert fields[F.ITEMS][0][F.UNIT_PRICE] == 2**63 - 1
    assert fields[F.ITEMS][0][F.QUANTITY] == 2**53 + 1


# -- sums ------------------------------------------------------------------------------------


def _event(kind: str, oid: str, pid: str | None, ts: int, amount: int, offset: int,
           currency: str = "EUR") -> tuple[Any, ...]:  # fmt: skip
    fields = json.dumps({F.CHANNEL: "web"}) if kind == ORDER else None
    method = None if kind == ORDER else "card"
    return (kind, oid, pid, ts, amount, currency, method, ts, kind, 0, offset, fields, b"k", b"v")


T0 = 1_767_225_600_000


def _paid_by(amounts: list[int]) -> tuple[dict[str, Any], minutely.Tally]:
    """One order of MAX_AMOUNT paid by `amounts`, closed: its outcome document and tally."""
    events = [_event(ORDER, "o", None, T0, MAX_AMOUNT, 0)]
    events += [_event(PAYMENT, "o", f"p{i}", T0 + i, a, i + 1) for i, a in enumerate(amounts)]
    state = empty_state()
    accepted = step(state, events, 0, RULES)
    res = step(state, [], T0 + 10**9, RULES)
    (out,) = [o for o in res.outputs if o.kind == "outcome"]
    return json.loads(to_json(out.doc)), minutely.merge(accepted.tally, res.tally)


def test_a_sum_past_2_53_is_exact() -> None:
    doc, _ = _paid_by([2**52 + 1, 2**52])
    assert doc["paid"] == 2**53 + 1 and doc["balance"] == MAX_AMOUNT - 2**53 - 1
    assert doc["status"] == "OVERPAID"


def test_a_sum_past_64_bits_is_stored_as_its_digits_never_wrapped() -> None:
    n = 1025  # the fewest maximal amounts whose sum leaves int64
    assert (n - 1) * MAX_AMOUNT <= INT64[1] < n * MAX_AMOUNT
    doc, tally = _paid_by([MAX_AMOUNT] * n)
    assert doc["paid"] == str(n * MAX_AMOUNT)
    assert doc["balance"] == MAX_AMOUNT - n * MAX_AMOUNT  # -1,024 maximal amounts: fits
    assert stored_int(doc["paid"]) == n * MAX_AMOUNT and doc["status"] == "OVERPAID"
    assert doc["amount"] == MAX_AMOUNT  # what fits stays a number
    paid_minute = [v for k, v in tally.items() if k[1] == minutely.PAYMENTS and k[2] == "all"]
    assert paid_minute == [[n, n * MAX_AMOUNT]]


def test_a_minute_whose_revenue_leaves_64_bits_is_folded_and_stored_exactly() -> None:
    key = (0, minutely.PAYMENTS, minutely.ALL, "EUR")
    stored: dict[str, Any] = {}
    total = 0
    for batch in range(3):  # each batch adds 600 maximal payments to the same minute
        added = 600 * MAX_AMOUNT
        total += added
        (doc,) = fold(stored, {key: [600, added]}, {}, f"b{batch}", None, T0)
        stored = {doc["_id"]: doc}
        assert stored_int(doc["amount"]) == total and doc["count"] == 600 * (batch + 1)
    assert isinstance(doc["amount"], str) and total > INT64[1]
    (again,) = fold(stored, {key: [600, 600 * MAX_AMOUNT]}, {}, "b2", None, T0)  # a re-run
    assert stored_int(again["amount"]) == total


def test_tallies_cross_the_sink_exactly() -> None:
    rows = minutely.to_rows({(0, minutely.ORDERS, minutely.ALL, "EUR"): [3, 10**30]})
    text = to_json({"figures": rows})
    assert minutely.add_rows({}, json.loads(text)["figures"]) == {
        (0, minutely.ORDERS, minutely.ALL, "EUR"): [3, 10**30]
    }


@pytest.mark.parametrize("value", [0, 1, -1, 2**53 + 1, INT64[1], INT64[0], 2**63, -(2**63) - 1,
                                   10**40])  # fmt: skip
def test_storable_keeps_every_integer(value: int) -> None:
    kept = storable({"a": [value, {"b": value}], "t": True})
    assert stored_int(kept["a"][0]) == value and stored_int(kept["a"][1]["b"]) == value
    assert isinstance(kept["a"][0], int) == (INT64[0] <= value <= INT64[1])
    assert kept["t"] is True


@pytest.mark.parametrize("text", ["１２", "1.5", "", "-", "1e3", " 12", "٣"])
def test_stored_int_reads_only_what_storable_writes(text: str) -> None:
    with pytest.raises(ValueError):
        stored_int(text)
    with pytest.raises(ValueError):
        stored_int(1.0)  # type: ignore[arg-type]


def test_the_dashboard_formats_money_exactly() -> None:
    assert money({"EUR": 2**53 + 1}) == "90,071,992,547,409.93 EUR"
    assert money({"EUR": -(10**20) - 5}) == "-1,000,000,000,000,000,000.05 EUR"


# -- integers through Arrow and pandas ----------------------------------------------------------


def _shape_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A shape's pandas frame as Spark makes it: PARSED columns through Arrow, then to_pandas."""
    schema = pa.schema([(f.name, _arrow(f.dataType.simpleString())) for f in PARSED.fields])
    batch = pa.RecordBatch.from_pylist(rows, schema=schema)
    return pa.Table.from_batches([batch]).to_pandas()


def _arrow(name: str) -> pa.DataType:
    return {"string": pa.string(), "bigint": pa.int64(), "int": pa.int32(),
            "binary": pa.binary()}[name]  # fmt: skip


def _row(kind: str, amount: int, event_ts: int, offset: int) -> dict[str, Any]:
    return {"kind": kind, "order_id": "o", "payment_id": "p" if kind == PAYMENT else None,
            "event_ts": event_ts, "amount": amount, "currency": "EUR", "method": "card",
            "kafka_ts": 2**53 + 3, "topic": "t", "partition": 2, "offset": offset,
            "fields": None, "raw_key": b"o", "raw_value": b"{}", "reason": None}  # fmt: skip


def test_integer_columns_reach_the_step_exactly() -> None:
    big = [MAX_AMOUNT, MAX_AMOUNT - 1, 2**53 - 3]
    rows = [_row(PAYMENT, a, 2**53 - i, 2**62 + i) for i, a in enumerate(big)]
    malformed = {**_row("malformed", 0, 0, 2**63 - 1), "reason": "invalid_json"}
    dead, events = split_events([_shape_frame([*rows, malformed])])
    col = {c: i for i, c in enumerate(EVENT_COLUMNS)}
    assert [e[col["amount"]] for e in events] == big
    assert [e[col["event_ts"]] for e in events] == [2**53, 2**53 - 1, 2**53 - 2]
    assert [e[col["offset"]] for e in events] == [2**62, 2**62 + 1, 2**62 + 2]
    assert all(type(e[col["amount"]]) is int for e in events)
    assert dead[0].doc["offset"] == 2**63 - 1 and dead[0].kafka_ts == 2**53 + 3


def test_a_null_in_an_integer_column_is_refused_not_rounded() -> None:
    """pyarrow hands a long column holding a null to pandas as float64 (which is why the source
    never lets one through, streaming.source.for_shape): the step refuses it."""
    rows = [_row(PAYMENT, MAX_AMOUNT, T0, 1), {**_row(PAYMENT, 0, T0, 2), "amount": None}]
    frame = _shape_frame(rows)
    assert frame["amount"].dtype.kind == "f"  # what made 2**63 - 1 come out negative
    with pytest.raises(TypeError, match="amount"):
        split_events([frame])
    assert set(SHAPE_INTEGERS) <= set(EVENT_COLUMNS)


# -- grammars: ASCII only ------------------------------------------------------------------------


TS_FIELDS = [(ORDER, ORD, F.ORDER_TS), (ORDER, ORD, F.PRODUCED_AT), (PAYMENT, PAY, F.PAYMENT_TS),
             (PAYMENT, PAY, F.PRODUCED_AT)]  # fmt: skip


@pytest.mark.parametrize("script", sorted(FOREIGN_DIGITS))
@pytest.mark.parametrize(("kind", "event", "name"), TS_FIELDS)
def test_a_timestamp_with_a_digit_from_outside_ascii_is_a_dead_letter(
    script: str, kind: str, event: dict[str, Any], name: str
) -> None:
    variants = _foreign(event[name], FOREIGN_DIGITS[script])
    assert len(variants) >= 17  # every digit position of the timestamp
    for ts in variants:
        assert _reason(kind, {**event, name: ts}) == f"wrong_type:{name}", ts
    whole = "".join(FOREIGN_DIGITS[script][int(c)] if c.isdigit() else c for c in event[name])
    assert _reason(kind, {**event, name: whole}) == f"wrong_type:{name}"


@pytest.mark.parametrize(
    "ts",
    [
        "2026-03-02Ｔ00:08:20Z",  # full-width T
        "2026-03-02T00:08:20Ｚ",  # full-width Z
        "2026-03-02T00:08:20\u1d22",  # small capital Z
        "2026-03-02T00:08:20+0１:00",
        "2026-03-02T00:08:20.１Z",  # a fraction digit
        "2026\u201003-02T00:08:20Z",  # a Unicode hyphen
        "2026-03-02T00\uff1a08:20Z",  # a full-width colon
        "2026-03-02T00:08:20\u221201:00",  # a minus sign
        "２０２６-03-02T00:08:20Z",  # the acceptance check's case
    ],
)
def test_timestamp_letters_and_signs_are_ascii_only(ts: str) -> None:
    assert _reason(PAYMENT, {**PAY, F.PAYMENT_TS: ts}) == "wrong_type:payment_ts"


@pytest.mark.parametrize(
    "currency",
    [
        "ＥＵＲ",  # full-width capitals
        "eur",
        "Eur",
        "\u212aES",  # Kelvin sign: case-folds to k
        "\u017fEK",  # long s: upper-cases to S
        "\u0131NR",  # dotless i: upper-cases to I
        "EU\u0280",  # small capital R
        "\u0395UR",  # Greek capital epsilon
        "E\u00dcR",  # U with diaeresis
        "EU",
        "EURO",
        "E1R",
        "EU٣",
        "EUR ",
        " EUR",
        "EUR\n",
    ],
)
@pytest.mark.parametrize(("kind", "event"), [(ORDER, ORD), (PAYMENT, PAY)])
def test_a_currency_is_three_ascii_capitals(
    kind: str, event: dict[str, Any], currency: str
) -> None:
    want = "invalid_value:currency"
    assert _reason(kind, {**event, F.CURRENCY: currency}) == want, currency


@pytest.mark.parametrize("currency", ["EUR", "JPY", "USD", "XTS", "BHD"])
def test_iso_4217_codes_are_accepted(currency: str) -> None:
    assert _reason(PAYMENT, {**PAY, F.CURRENCY: currency}) == "valid"


@pytest.mark.parametrize("digits", sorted(set(FOREIGN_DIGITS) - {"superscript", "subscript"}))
def test_a_json_number_with_digits_from_outside_ascii_is_invalid_json(
    digits: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = json.dumps(PAY).replace(f'"amount": {PAY[F.AMOUNT]}', '"amount": 1' + FOREIGN_DIGITS[
        digits][2])  # fmt: skip
    assert wire.check(PAYMENT, b"o-1", text.encode()) == "invalid_json"
    # the same with json's pure-Python scanner, which matches numbers with `\d`
    from json import scanner

    monkeypatch.setattr(wire._DECODER, "scan_once", scanner.py_make_scanner(wire._DECODER))
    assert wire.check(PAYMENT, b"o-1", text.encode()) == "invalid_json"
    float_text = text.replace('"amount": 1', '"amount": 1.5')
    assert wire.check(PAYMENT, b"o-1", float_text.encode()) == "invalid_json"


# -- the reference grammars ------------------------------------------------------------------------

ASCII_DIGITS = "0123456789"
CAPITALS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def reference_timestamp(text: str) -> int | None:
    """RFC 3339 date-time with an offset, by hand with explicit ASCII characters: epoch ms, or
    None when `text` is not one."""

    def number(part: str) -> int | None:
        if not part or any(c not in ASCII_DIGITS for c in part):
            return None
        return sum(ASCII_DIGITS.index(c) * 10**i for i, c in enumerate(reversed(part)))

    if len(text) < 20 or text[4] != "-" or text[7] != "-" or text[10] not in "Tt":
        return None
    if text[13] != ":" or text[16] != ":":
        return None
    parts = [number(text[a:b]) for a, b in ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19))]
    if any(p is None for p in parts):
        return None
    year, month, day, hour, minute, sec = parts  # type: ignore[misc]
    rest, millis = text[19:], 0
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end] in ASCII_DIGITS:
            end += 1
        if not 2 <= end <= 10:
            return None
        millis = number(rest[1:end][:3].ljust(3, "0")) or 0
        rest = rest[end:]
    if rest in ("Z", "z"):
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        oh, om = number(rest[1:3]), number(rest[4:6])
        if oh is None or om is None or oh > 23 or om > 59:
            return None
        offset = (1 if rest[0] == "+" else -1) * (oh * 3600 + om * 60)
    else:
        return None
    if not (year >= 1 and 1 <= month <= 12 and hour < 24 and minute < 60 and sec < 60):
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    return (calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0)) - offset) * 1000 + (
        millis
    )


def reference_currency(text: str) -> bool:
    return len(text) == 3 and all(c in CAPITALS for c in text)


_TS_CHARS = st.sampled_from(
    list("0123456789-:.+TtZz ") + [d for ds in FOREIGN_DIGITS.values() for d in ds]
    + ["Ｔ", "Ｚ", "\u2212", "\uff1a", "\u212a", "\u0131", "é"]
)  # fmt: skip


@st.composite
def timestamp_like(draw: st.DrawFn) -> str:
    """Valid RFC 3339 text with a few characters changed, or arbitrary text of its alphabet."""
    if draw(st.booleans()):
        return draw(st.text(_TS_CHARS, min_size=18, max_size=32))
    bases = ["2026-03-02T00:08:20Z", "2024-02-29t23:59:59.123456+05:30",
             "0001-01-01T00:00:00.1-00:00", "9999-12-31T23:59:59z"]  # fmt: skip
    base = draw(st.sampled_from(bases))
    chars = list(base)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(chars) - 1))
        chars[i] = draw(_TS_CHARS)
    return "".join(chars)


@settings(max_examples=1500, deadline=None)
@given(timestamp_like())
def test_the_timestamp_verdict_equals_the_ascii_reference_grammar(text: str) -> None:
    want = reference_timestamp(text)
    try:
        got: int | None = wire.parse_timestamp(text)
    except ValueError:
        got = None
    assert got == want


@settings(max_examples=800, deadline=None)
@given(st.text(st.sampled_from(list(CAPITALS + "az09 ") + ["Ａ", "\u212a", "\u017f", "\u0131",
                                                            "Ε", "Ü", "ß"]),  # fmt: skip
               min_size=0, max_size=5))  # fmt: skip
def test_the_currency_verdict_equals_the_ascii_reference_grammar(text: str) -> None:
    got = _reason(PAYMENT, {**PAY, F.CURRENCY: text})
    if not text:
        assert got == "invalid_value:currency"
    else:
        assert (got == "valid") == reference_currency(text), text
