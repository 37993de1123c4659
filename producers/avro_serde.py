"""The Avro wire format on the producers' side (PIPELINE_FORMAT=avro), apart from the registry.

- `event_record(event, with_fields)`: an Order/Payment -> the dict an Avro serializer takes
  (timestamps as epoch ms; a v2 order's `loyalty_tier` when the schema has it).
- `to_avro(scenario, encode)`: a JSON scenario -> the same scenario on the Avro wire, emission by
  emission, with the same dirt where Avro can carry it (see `AVRO_DIRT`).
- `AvroCodec(writers)`: `validate`/`decode` of Confluent-framed values with fastavro, by the
  checks of contract/avro.py: what the ground truth (producers/truth.py) decides with.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from typing import Any

import fastavro

from contract import avro, wire
from contract.events import Event, F, Item, Order, Payment, Reason, reason
from producers import serde
from producers.dirt import Dirt
from producers.scenario import Scenario

UNKNOWN_ID = 2**31 - 7  # a schema id no registry of a test run hands out
TIERS = ("bronze", "silver", "gold")
GARBAGE = b"\xff" * 12  # a varint that never ends: no Avro decoder reads a string length from it

# How each malformed JSON dirt travels in Avro. The semantic defects keep their reason; defects
# that Avro's types rule out become the framing and decoding defects of a Confluent stream.
AVRO_DIRT = {
    Dirt.BAD_JSON: reason(Reason.INVALID_FRAME),  # the JSON text itself: first byte not 0
    Dirt.MISSING_FIELD: reason(Reason.UNKNOWN_SCHEMA_ID),  # a frame naming no known schema
    Dirt.WRONG_TYPE: reason(Reason.INVALID_AVRO),  # a real schema id, a body that is garbage
    Dirt.NEGATIVE_AMOUNT: reason(Reason.NEGATIVE_AMOUNT),
    Dirt.UNKNOWN_SCHEMA_VERSION: reason(Reason.UNKNOWN_SCHEMA_VERSION),
}


def frame(schema_id: int, body: bytes) -> bytes:
    return bytes([avro.MAGIC]) + schema_id.to_bytes(4, "big", signed=True) + body


def event_record(event: Event, with_fields: frozenset[str] = frozenset()) -> dict[str, Any]:
    """An event as an Avro record dict; `with_fields`: optional fields of a newer schema."""
    if isinstance(event, Order):
        rec = {
            **serde.order_dict(event),
            F.ORDER_TS: event.order_ts,
            F.PRODUCED_AT: event.produced_at,
        }
        if "loyalty_tier" in with_fields:
            rec["loyalty_tier"] = TIERS[sum(map(ord, event.customer_id)) % len(TIERS)]
        return rec
    return {**serde.payment_dict(event), F.PAYMENT_TS: event.payment_ts,
            F.PRODUCED_AT: event.produced_at}  # fmt: skip


def record_of(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A JSON message dict with every contract field (`serde.order_dict`) -> an Avro record."""
    rec = dict(obj)
    for name in (F.ORDER_TS, F.PAYMENT_TS, F.PRODUCED_AT):
        if name in rec:
            rec[name] = wire.parse_timestamp(rec[name])
    return rec


# (topic kind, record dict) -> Confluent-framed bytes (the registry's serializer, or a test's)
Encoder = Callable[[str, dict[str, Any]], bytes]


def to_avro(scenario: Scenario, encode: Encoder, schema_ids: dict[str, int],
            with_fields: frozenset[str] = frozenset()) -> Scenario:  # fmt: skip
    """`scenario` with every value on the Avro wire. Valid events (late ones included) are encoded
    whole; a malformed message becomes its `AVRO_DIRT` counterpart, whose reason it then has."""
    out = []
    for em in scenario.emissions:
        if em.event is not None:
            value = encode(em.topic, event_record(em.event, with_fields))
            out.append(dataclasses.replace(em, value=value))
            continue
        why = AVRO_DIRT[em.dirt]
        if em.dirt is Dirt.BAD_JSON:
            value = em.value
        elif em.dirt is Dirt.MISSING_FIELD:
            value = frame(UNKNOWN_ID, em.value)
        elif em.dirt is Dirt.WRONG_TYPE:
            value = frame(schema_ids[em.topic], GARBAGE)
        else:  # a complete message with a bad value: encoded as it is
            value = encode(em.topic, record_of(em.topic, json.loads(em.value)))
        out.append(dataclasses.replace(em, value=value, reason=why))
    return dataclasses.replace(scenario, emissions=tuple(out))


class AvroCodec:
    """Decides Confluent-framed Avro values as the job does (contract/avro.py), decoding with
    fastavro; `writers`: schema id -> writer schema (parsed JSON) of every id the registry has."""

    def __init__(self, writers: dict[int, Any]) -> None:
        self.writers = dict(writers)
        self._parsed: dict[int, Any] = {}
        self._readers = {
            k: fastavro.parse_schema(json.loads(avro.reader_json(serde.CONTRACT_KIND[k])))
            for k in serde.KINDS
        }

    def _decode(self, kind: str) -> avro.Decoder:
        def decode(schema_id: int, writer: Any, body: bytes) -> Any:
            if schema_id not in self._parsed:
                self._parsed[schema_id] = fastavro.parse_schema(avro.plain(writer))
            return fastavro.schemaless_reader(
                io.BytesIO(body), self._parsed[schema_id], self._readers[kind]
            )

        return decode

    def fields(self, kind: str, raw: bytes | None, key: bytes | None, check_key: bool) -> Any:
        return avro.parse(serde.CONTRACT_KIND[kind], key, raw, self.writers.get,
                          self._decode(kind), check_key=check_key)  # fmt: skip

    def validate(self, kind: str, raw: bytes | None, key: bytes | None = None,
                 check_key: bool = True) -> str | None:  # fmt: skip
        try:
            self.fields(kind, raw, key, check_key)
        except wire.Invalid as exc:
            return str(exc)
        return None

    def decode(self, kind: str, raw: bytes) -> Event:
        f = self.fields(kind, raw, None, check_key=False)
        if kind == serde.ORDERS:
            items = tuple(Item(i[F.PRODUCT_ID], i[F.CATEGORY], i[F.QUANTITY], i[F.UNIT_PRICE])
                          for i in f[F.ITEMS])  # fmt: skip
            return Order(f[F.ORDER_ID], f[F.CUSTOMER_ID], f[F.STORE_ID], f[F.CHANNEL], items,
                         f[F.AMOUNT], f[F.CURRENCY], f[F.ORDER_TS], f[F.PRODUCED_AT],
                         f[F.SCHEMA_VERSION])  # fmt: skip
        return Payment(f[F.PAYMENT_ID], f[F.ORDER_ID], f[F.METHOD], f[F.AMOUNT], f[F.CURRENCY],
                       f[F.PAYMENT_TS], f[F.PRODUCED_AT], f[F.SCHEMA_VERSION])  # fmt: skip
