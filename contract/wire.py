"""The wire format's one parser: a Kafka message's raw key and value bytes -> a valid event's
contract fields, typed, or the reason it is a dead letter. Pure Python, standard library only.

The streaming job (`streaming/source.py`, on the executors) and the producers' ground truth
(`producers/truth.py`) both decide with `parse`, so what the job accepts is exactly what the
truth expects, and everything downstream reads only the fields `parse` returns.

Checks, in order; the first that fails names the reason (`Reason` in contract/events.py):

    invalid_utf8:key     the key is not UTF-8
    invalid_json         no value (a tombstone)
    too_large            the value is longer than `max_bytes`
    invalid_utf8         the value is not UTF-8, or a JSON string in it escapes a lone surrogate
                         (`"\\ud800"`): text that no UTF-8 encoder can write
    invalid_json         not one strict RFC 8259 JSON text: trailing data or a second value,
                         comments, single quotes, NaN/Infinity, leading zeros, raw control
                         characters in strings, a key given twice, arrays/objects nested
                         deeper than MAX_DEPTH
    not_an_object        valid JSON, but not an object
    missing_field:<f>    a contract field is absent (in the order of the contract's fields)
    wrong_type:<f>       a field has the wrong JSON type: strings must be JSON strings, integers
                         JSON integers (`1.0`, `1e3`, `true` and `"1"` are not); timestamps are
                         RFC 3339 strings with an explicit offset (see TIMESTAMP_FORMS); items an
                         array of objects with the item fields
    out_of_range:<f>     an integer outside the signed 64-bit range
    invalid_value:<f>    a string field empty, longer than MAX_STRING, or holding a control
                         character (NUL included); a currency not three ASCII capital letters
                         (ISO 4217)
    unknown_schema_version, negative_amount
    out_of_range:amount  an amount above MAX_AMOUNT (2**53 - 1, contract/events.py)
    key_mismatch         the Kafka key is not the event's order_id (UTF-8): the topics are keyed
                         by order_id, so a keyless or mis-keyed message breaks the contract
    future_event_time    the event time is more than `max_future_ms` past the message's Kafka
                         timestamp (only when one is given): one such event would otherwise move
                         the watermark ahead and make every later event late

Fields not in the contract are dropped: they are never stored (`fields` holds the contract's
fields only), so a hostile field name (`$set`, `a.b`, NUL) cannot reach the database.
"""

from __future__ import annotations

import calendar
import json
import re
from typing import Any

from contract.events import (
    CURRENCY_PATTERN,
    FIELD_TYPES,
    ITEM_FIELDS,
    MAX_AMOUNT,
    ORDER,
    ORDER_FIELDS,
    PAYMENT_FIELDS,
    SCHEMA_VERSION,
    F,
    Reason,
    reason,
)
from contract.integers import INT64

MAX_BYTES = 1_048_576  # Kafka's default largest message; PIPELINE_MAX_MESSAGE_BYTES
MAX_STRING = 256  # longest accepted string field, in characters
# Deepest nesting of arrays and objects accepted, anywhere in a value. Decided by counting, not by
# the recursion limit: where that limit falls depends on how deep the caller's stack already is
# (the producers' truth and Spark's Python worker differ), so the same bytes could pass in one
# and fail in the other. Far below it, whatever the caller.
MAX_DEPTH = 128
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")

# RFC 3339 date-time: a `T` (or `t`), seconds, an optional fraction, and an explicit offset:
# `Z`/`z` or `+hh:mm`/`-hh:mm`. Nothing else (no bare dates, no missing offset, no leap second).
TIMESTAMP_FORMS = "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM), `t`/`z` also accepted"
# Digits are `[0-9]`, never `\d` (which takes any Unicode decimal digit: full-width, Arabic-Indic,
# Devanagari...), and `re.ASCII` keeps every class ASCII whatever is added later.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)
_CURRENCY = re.compile(CURRENCY_PATTERN, re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Invalid(ValueError):
    """A message the contract rejects; `str(exc)` is the dead-letter reason."""


def parse_timestamp(text: Any) -> int:
    """An RFC 3339 date-time with an explicit offset -> epoch milliseconds (a fraction beyond
    milliseconds is truncated). Raises ValueError for anything else."""
    m = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp with an offset: {text!r}")
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and hour < 24 and minute < 60 and sec < 60 and year >= 1):
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    offset = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise ValueError(f"not an RFC 3339 offset: {text!r}")
        offset = (1 if m.group(9) == "+" else -1) * (oh * 3600 + om * 60)
    millis = int((m.group(7) or "0")[:3].ljust(3, "0"))
    return (
        calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0)) - offset
    ) * 1000 + millis


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise Invalid(reason(Reason.INVALID_JSON))
    return obj


def _no_constant(name: str) -> Any:
    raise Invalid(reason(Reason.INVALID_JSON))  # NaN, Infinity, -Infinity


def _ascii_number(literal: str) -> None:
    """JSON numbers are ASCII digits. CPython's C scanner only matches those; its pure-Python
    fallback (`json.scanner.py_make_scanner`, and other interpreters) matches any Unicode digit
    with `\\d`, which `int()` and `float()` then convert silently."""
    if not literal.isascii():
        raise Invalid(reason(Reason.INVALID_JSON))


def _integer(literal: str) -> int:
    """A JSON integer literal -> int. JSON has no leading zeros, so one of more than 19 digits is
    outside 64 bits whatever they are: it becomes the nearest value out of range, unconverted.
    Converting it would be quadratic in its length, and Python refuses past 4,300 digits
    (`sys.get_int_max_str_digits`, absent before 3.10.7), which made the verdict `invalid_json`
    or `out_of_range` depending on the interpreter."""
    _ascii_number(literal)
    if len(literal) - literal.startswith("-") > 19:
        return INT64[0] - 1 if literal.startswith("-") else INT64[1] + 1
    return int(literal)


def _float(literal: str) -> float:
    _ascii_number(literal)
    return float(literal)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicate_keys,
    parse_constant=_no_constant,
    parse_int=_integer,
    parse_float=_float,
)


def _too_deep(text: str) -> bool:
    """Arrays/objects nested deeper than MAX_DEPTH (brackets inside strings do not count)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # the usual case, at the cost of two C-speed counts
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_DEPTH:
            return True
    return False


def _load(value: bytes) -> Any:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(reason(Reason.INVALID_UTF8)) from None
    if _too_deep(text):
        raise Invalid(reason(Reason.INVALID_JSON))
    try:
        obj = _DECODER.decode(text)  # strict: one value, nothing after it but whitespace
    except Invalid:
        raise
    except (ValueError, RecursionError):
        raise Invalid(reason(Reason.INVALID_JSON)) from None
    if "\\u" in text:  # only an escape can smuggle in a lone surrogate
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid(reason(Reason.INVALID_UTF8)) from None
    return obj


def _typed(name: str, value: Any) -> Any:
    """The field's value in its contract type, or Invalid."""
    kind = FIELD_TYPES[name]
    if kind == "string":
        if not isinstance(value, str):
            raise Invalid(reason(Reason.WRONG_TYPE, name))
        if not value or len(value) > MAX_STRING or _CONTROL.search(value):
            raise Invalid(reason(Reason.INVALID_VALUE, name))
        if name == F.CURRENCY and not _CURRENCY.fullmatch(value):
            raise Invalid(reason(Reason.INVALID_VALUE, name))
        return value
    if kind == "long":
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(reason(Reason.WRONG_TYPE, name))
        if not INT64[0] <= value <= INT64[1]:
            raise Invalid(reason(Reason.OUT_OF_RANGE, name))
        return value
    if kind == "timestamp":
        try:
            return parse_timestamp(value)
        except ValueError:
            raise Invalid(reason(Reason.WRONG_TYPE, name)) from None
    if kind == "items":
        if not isinstance(value, list) or not all(
            isinstance(i, dict) and all(f in i for f in ITEM_FIELDS) for i in value
        ):
            raise Invalid(reason(Reason.WRONG_TYPE, name))
        return [{f: _typed(f, i[f]) for f in ITEM_FIELDS} for i in value]
    raise ValueError(f"unknown field type {kind!r}")


typed = _typed  # contract/avro.py checks a decoded Avro record's values the same way


def fields_of(kind: str, obj: Any) -> dict[str, Any]:
    """A parsed JSON value -> the contract fields of a `kind` event, typed (timestamps as epoch
    ms), or Invalid."""
    if not isinstance(obj, dict):
        raise Invalid(reason(Reason.NOT_AN_OBJECT))
    names = ORDER_FIELDS if kind == ORDER else PAYMENT_FIELDS
    for name in names:
        if name not in obj:
            raise Invalid(reason(Reason.MISSING_FIELD, name))
    return checked({name: _typed(name, obj[name]) for name in names})


def checked(fields: dict[str, Any]) -> dict[str, Any]:
    """The checks across an event's typed fields (every wire format's): its schema version,
    and an amount from 0 to MAX_AMOUNT."""
    if fields[F.SCHEMA_VERSION] != SCHEMA_VERSION:
        raise Invalid(reason(Reason.UNKNOWN_SCHEMA_VERSION))
    if fields[F.AMOUNT] < 0:
        raise Invalid(reason(Reason.NEGATIVE_AMOUNT))
    if fields[F.AMOUNT] > MAX_AMOUNT:
        raise Invalid(reason(Reason.OUT_OF_RANGE, F.AMOUNT))
    return fields


def event_ts_field(kind: str) -> str:
    return F.ORDER_TS if kind == ORDER else F.PAYMENT_TS


def parse(
    kind: str,
    key: bytes | None,
    value: bytes | None,
    kafka_ts: int | None = None,
    max_bytes: int = MAX_BYTES,
    max_future_ms: int | None = None,
    check_key: bool = True,
) -> dict[str, Any]:
    """A message on the `kind` (ORDER or PAYMENT) topic -> its contract fields, or Invalid.
    `check_key=False` checks the value alone (the producers' own encode/decode round trips)."""
    if key is not None:
        try:
            key.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(reason(Reason.INVALID_UTF8, "key")) from None
    if value is None:
        raise Invalid(reason(Reason.INVALID_JSON))
    if len(value) > max_bytes:
        raise Invalid(reason(Reason.TOO_LARGE))
    fields = fields_of(kind, _load(value))
    if check_key and (key is None or key.decode("utf-8") != fields[F.ORDER_ID]):
        raise Invalid(reason(Reason.KEY_MISMATCH))
    if (
        kafka_ts is not None
        and max_future_ms is not None
        and fields[event_ts_field(kind)] > kafka_ts + max_future_ms
    ):
        raise Invalid(reason(Reason.FUTURE_EVENT_TIME))
    return fields


def check(kind: str, key: bytes | None, value: bytes | None, **limits: Any) -> str | None:
    """The dead-letter reason of a message, or None when it is a valid event."""
    try:
        parse(kind, key, value, **limits)
    except Invalid as exc:
        return str(exc)
    return None


def preview(data: bytes | None, limit: int = 512) -> str | None:
    """Printable text of raw bytes for people reading a dead letter: UTF-8 where it decodes,
    `\\xNN` for bytes that do not, control characters escaped, cut at `limit` characters."""
    if data is None:
        return None
    text = data[: limit * 4].decode("utf-8", "backslashreplace")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= limit else text[:limit] + "..."
