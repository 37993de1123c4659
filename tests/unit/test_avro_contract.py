"""contract/avro.py and producers/avro_serde.py without a registry: framing, schema checks, the
contract's checks on a decoded record, and the checked-in schemas against contract/events.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract import avro, wire
from contract.events import ORDER, PAYMENT, F
from producers import avro_serde, serde
from producers.scenario import ScenarioConfig, generate

AVSC = Path(avro.__file__).resolve().parent / "avsc"


def test_the_checked_in_schemas_are_the_contracts() -> None:
    for kind, name in ((ORDER, "order.avsc"), (PAYMENT, "payment.avsc")):
        doc = json.loads((AVSC / name).read_text())
        doc.pop("doc")
        assert doc == avro.schema(kind)
    v2 = json.loads((AVSC / "order_v2.avsc").read_text())
    assert avro.schema_problem(ORDER, v2) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "invalid_frame"), (b"\x00\x00\x01", "invalid_frame"), (b"{}...", "invalid_frame"),
     (b"\x01\x00\x00\x00\x01x", "invalid_frame"), (b"\x00\x00\x00\x00\x07body", (7, b"body"))],
)  # fmt: skip
def test_split_frame(value: bytes | None, expected: object) -> None:
    if isinstance(expected, str):
        with pytest.raises(wire.Invalid, match=expected):
            avro.split_frame(value)
    else:
        assert avro.split_frame(value) == expected


def _without(kind: str, name: str) -> dict:
    s = avro.schema(kind)
    s["fields"] = [f for f in s["fields"] if f["name"] != name]
    return s


def _retyped(kind: str, name: str, t: object) -> dict:
    s = avro.schema(kind)
    next(f for f in s["fields"] if f["name"] == name)["type"] = t
    return s


@pytest.mark.parametrize(
    ("writer", "expected"),
    [(avro.schema(ORDER), None), (avro.schema(PAYMENT), "not_an_object"),
     ("string", "not_an_object"),
     (_without(ORDER, "currency"), "missing_field:currency"),
     (_retyped(ORDER, "amount", "string"), "wrong_type:amount"),
     (_retyped(ORDER, "amount", "int"), None),
     (_retyped(ORDER, "order_id", ["null", "string"]), "wrong_type:order_id")],
)  # fmt: skip
def test_schema_problem(writer: object, expected: str | None) -> None:
    assert avro.schema_problem(ORDER, writer) == expected


def test_the_codec_decides_every_avro_dirt() -> None:
    schemas = {1: avro.schema(ORDER), 2: avro.schema(PAYMENT)}
    ids = {serde.ORDERS: 1, serde.PAYMENTS: 2}
    import fastavro

    parsed = {k: fastavro.parse_schema(avro.schema(serde.CONTRACT_KIND[k])) for k in ids}

    def encode(kind: str, record: dict) -> bytes:
        import io

        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed[kind], record)
        return avro_serde.frame(ids[kind], out.getvalue())

    scenario = avro_serde.to_avro(generate(ScenarioConfig(n_orders=300, seed=3, p_malformed=0.3)),
                                  encode, ids)  # fmt: skip
    codec = avro_serde.AvroCodec(schemas)
    for em in scenario.emissions:
        why = codec.validate(em.topic, em.value, em.key)
        assert why == (None if em.reason == "late" else em.reason)
        if why is None:
            assert codec.decode(em.topic, em.value) == em.event
    reasons = {em.reason for em in scenario.emissions}
    assert {"invalid_frame", "unknown_schema_id", "invalid_avro", "negative_amount"} <= reasons
    good = next(em for em in scenario.emissions if em.reason is None)
    assert codec.validate(good.topic, good.value[:-2], good.key) == "invalid_avro"


def test_with_texts_decodes_strings_strictly_nested_too() -> None:
    record = {F.ORDER_ID: b"o-1", F.AMOUNT: 5, F.ITEMS: [{F.PRODUCT_ID: b"p-1", F.QUANTITY: 2}]}
    got = avro.with_texts(ORDER, record)
    assert got[F.ORDER_ID] == "o-1" and got[F.AMOUNT] == 5
    assert got[F.ITEMS] == [{F.PRODUCT_ID: "p-1", F.QUANTITY: 2}]
    assert avro.with_texts(ORDER, None) is None  # a body that did not decode
    with pytest.raises(UnicodeDecodeError):
        avro.with_texts(ORDER, {**record, F.ITEMS: [{F.PRODUCT_ID: b"\xff"}]})
