"""The Avro wire format (PIPELINE_FORMAT=avro): Confluent's framing and the contract's checks on a
decoded record. Pure Python, standard library only; the decoding itself is the caller's (Spark's
from_avro in the job, fastavro in the producers' ground truth), passed in as a function.

A Confluent-framed message is one byte 0 (the magic byte), the writer schema's registry id as a
4-byte big-endian integer, then the Avro binary body. The schemas live in the registry under
TopicNameStrategy subjects (`<topic>-value`); contract/avsc/*.avsc are the ones the producers
register, and `schema(kind)` (built from contract/events.py) is the one the job reads with:
Avro's schema resolution maps any compatible writer schema (a v2 with an added optional field)
onto it, and fields outside the contract are dropped as in JSON.

Checks, in order; the first that fails names the reason (`Reason` in contract/events.py):

    invalid_utf8:key     the key is not UTF-8
    too_large            the value is longer than `max_bytes`
    invalid_frame        no value, a value shorter than 5 bytes, or a first byte other than 0
    unknown_schema_id    the registry has no schema with the frame's id
    not_an_object        the writer schema is not a record
    missing_field:<f>    the writer schema has no contract field <f>
    wrong_type:<f>       the writer schema's type of <f> cannot be read as the contract's
    invalid_avro         the body does not decode with the writer schema
    out_of_range:<f>     a timestamp outside years 1-9999 (what RFC 3339 can write)
    invalid_value:<f>    as in JSON: a string empty, over 256 characters, or with a control char
    unknown_schema_version, negative_amount, key_mismatch, future_event_time   as in JSON

A body followed by extra bytes decodes (neither Spark nor fastavro looks past the record).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from contract import wire
from contract.events import (
    FIELD_TYPES,
    ITEM_FIELDS,
    ORDER,
    ORDER_FIELDS,
    PAYMENT_FIELDS,
    F,
    Reason,
    reason,
)

MAGIC = 0
HEADER = 5  # the magic byte and the 4-byte schema id
NAMESPACE = "retail.payments"
RECORD = {ORDER: "Order", "payment": "Payment"}
# epoch ms of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: what the JSON contract can write
TS_RANGE = (-62_135_596_800_000, 253_402_300_799_999)
_AVRO_TYPE = {"string": "string", "long": "long", "timestamp": "long"}


def subject(topic: str) -> str:
    """TopicNameStrategy: the value schema of `topic`."""
    return f"{topic}-value"


def _field(name: str) -> dict[str, Any]:
    kind = FIELD_TYPES[name]
    if kind == "items":
        item = {"type": "record", "name": "Item", "fields": [_field(f) for f in ITEM_FIELDS]}
        return {"name": name, "type": {"type": "array", "items": item}}
    if kind == "timestamp":
        return {"name": name, "type": {"type": "long", "logicalType": "timestamp-millis"}}
    return {"name": name, "type": _AVRO_TYPE[kind]}


def schema(kind: str) -> dict[str, Any]:
    """The contract's Avro schema of a `kind` (ORDER or PAYMENT) event, v1 (contract/avsc)."""
    names = ORDER_FIELDS if kind == ORDER else PAYMENT_FIELDS
    return {"type": "record", "name": RECORD[kind], "namespace": NAMESPACE,
            "fields": [_field(n) for n in names]}  # fmt: skip


def plain(s: Any) -> Any:
    """`s` without logical types: timestamps read as the epoch-ms longs they are encoded as, the
    same in Spark and fastavro (their conversions of out-of-range values differ)."""
    if isinstance(s, dict):
        return {k: plain(v) for k, v in s.items() if k != "logicalType"}
    if isinstance(s, list):
        return [plain(v) for v in s]
    return s


def reader_json(kind: str) -> str:
    """The schema the job reads every writer schema into (Avro schema resolution)."""
    return json.dumps(plain(schema(kind)), separators=(",", ":"))


def split_frame(value: bytes | None) -> tuple[int, bytes]:
    """A Confluent frame -> (schema id, body), or Invalid(invalid_frame)."""
    if value is None or len(value) < HEADER or value[0] != MAGIC:
        raise wire.Invalid(reason(Reason.INVALID_FRAME))
    return int.from_bytes(value[1:HEADER], "big", signed=True), value[HEADER:]


def _named(types: Any) -> dict[str, Any]:
    return {f["name"]: f["type"] for f in types.get("fields", [])}


def _base(t: Any) -> Any:
    primitive = isinstance(t, dict) and t.get("type") in ("long", "int", "string")
    return t.get("type") if primitive else t


def _type_ok(kind: str, t: Any) -> bool:
    t = _base(t)
    if kind == "string":
        return t == "string"
    if kind in ("long", "timestamp"):
        return t in ("long", "int")  # an int is promoted to long
    if kind == "items":
        if not (isinstance(t, dict) and t.get("type") == "array"):
            return False
        item = t.get("items")
        if not (isinstance(item, dict) and item.get("type") == "record"):
            return False
        fields = _named(item)
        return all(f in fields and _type_ok(FIELD_TYPES[f], fields[f]) for f in ITEM_FIELDS)
    return False


def schema_problem(kind: str, writer: Any) -> str | None:
    """Why records of writer schema `writer` (parsed JSON) cannot be read as `kind` events, as a
    dead-letter reason; None when Avro's resolution maps it onto `schema(kind)`."""
    if not (isinstance(writer, dict) and writer.get("type") == "record"):
        return reason(Reason.NOT_AN_OBJECT)
    if writer.get("name") != RECORD[kind] or writer.get("namespace", NAMESPACE) != NAMESPACE:
        return reason(Reason.NOT_AN_OBJECT)  # resolution matches records by their full name
    fields = _named(writer)
    for name in ORDER_FIELDS if kind == ORDER else PAYMENT_FIELDS:
        if name not in fields:
            return reason(Reason.MISSING_FIELD, name)
        if not _type_ok(FIELD_TYPES[name], fields[name]):
            return reason(Reason.WRONG_TYPE, name)
    return None


def fields_of(kind: str, record: Any) -> dict[str, Any]:
    """A decoded record (read with `reader_json(kind)`: timestamps as epoch ms) -> the contract
    fields, typed as contract/wire.py returns them, or Invalid. A record with a NULL field is a
    body that did not decode (Spark's PERMISSIVE mode gives all fields NULL)."""
    names = ORDER_FIELDS if kind == ORDER else PAYMENT_FIELDS
    if not isinstance(record, dict) or any(record.get(n) is None for n in names):
        raise wire.Invalid(reason(Reason.INVALID_AVRO))
    fields = {}
    for name in names:
        value = record[name]
        if FIELD_TYPES[name] == "timestamp":
            if not TS_RANGE[0] <= value <= TS_RANGE[1]:
                raise wire.Invalid(reason(Reason.OUT_OF_RANGE, name))
            fields[name] = value
        else:
            fields[name] = wire.typed(name, value)
    return wire.checked(fields)


def _texts(names: tuple[str, ...], record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    for name in names:
        value, kind = record.get(name), FIELD_TYPES.get(name)
        if kind == "string" and isinstance(value, (bytes, bytearray)):
            out[name] = bytes(value).decode("utf-8")  # strict: UnicodeDecodeError
        elif kind == "items" and isinstance(value, list):
            out[name] = [_texts(ITEM_FIELDS, i) if isinstance(i, dict) else i for i in value]
    return out


def with_texts(kind: str, record: Any) -> Any:
    """A decoded record whose string fields came as their raw bytes (the job reads them so:
    Spark's Avro reader does not check UTF-8) -> the same with `str`, or UnicodeDecodeError, as
    fastavro raises for the ground truth: an Avro string must be UTF-8."""
    if not isinstance(record, dict):
        return record
    return _texts(ORDER_FIELDS if kind == ORDER else PAYMENT_FIELDS, record)


Writers = Callable[[int], Any]  # schema id -> the writer schema (parsed JSON), None: unknown
Decoder = Callable[[int, Any, bytes], Any]  # (id, writer schema, body) -> record; raises if bad


def parse(
    kind: str,
    key: bytes | None,
    value: bytes | None,
    writer_of: Writers,
    decode: Decoder,
    kafka_ts: int | None = None,
    max_bytes: int = wire.MAX_BYTES,
    max_future_ms: int | None = None,
    check_key: bool = True,
) -> dict[str, Any]:
    """A message on the `kind` topic -> its contract fields, or Invalid (checks: module doc)."""
    if key is not None:
        try:
            key.decode("utf-8")
        except UnicodeDecodeError:
            raise wire.Invalid(reason(Reason.INVALID_UTF8, "key")) from None
    if value is not None and len(value) > max_bytes:
        raise wire.Invalid(reason(Reason.TOO_LARGE))
    schema_id, body = split_frame(value)
    writer = writer_of(schema_id)
    if writer is None:
        raise wire.Invalid(reason(Reason.UNKNOWN_SCHEMA_ID))
    problem = schema_problem(kind, writer)
    if problem:
        raise wire.Invalid(problem)
    try:
        record = decode(schema_id, writer, body)
    except wire.Invalid:
        raise
    except Exception:  # noqa: BLE001 - whatever the decoder raises, the body is bad
        raise wire.Invalid(reason(Reason.INVALID_AVRO)) from None
    fields = fields_of(kind, record)
    if check_key and (key is None or key.decode("utf-8") != fields[F.ORDER_ID]):
        raise wire.Invalid(reason(Reason.KEY_MISMATCH))
    event_ts = fields[wire.event_ts_field(kind)]
    if kafka_ts is not None and max_future_ms is not None and event_ts > kafka_ts + max_future_ms:
        raise wire.Invalid(reason(Reason.FUTURE_EVENT_TIME))
    return fields
