"""The source's Avro half (PIPELINE_FORMAT=avro): Confluent-framed Avro -> the same PARSED rows as
the JSON parser (streaming/source.py), so everything downstream is unchanged. Touches the schema
registry (the driver, at query start; an executor, for an id it was not planned with).

    value = 0x00 | schema id (4 bytes) | Avro body
      --> the id, read in the JVM
      --> CASE id WHEN <each id of the topic's subject> THEN from_avro(body, writer, reader) END
          (Spark's own Avro reader, spark-avro; PERMISSIVE: a body that does not decode is NULL;
          `avroSchema` = the contract's reader schema: Avro's resolution drops fields outside
          the contract, such as a v2's added optional field)
      --> the verdict in Python (contract/avro.py `parse`, the truth's own checks), mapInArrow

The plan names the writer schemas the registry held when the query started. A message with an
id outside it is looked up by the executor: unknown to the registry -> `unknown_schema_id`;
known (a schema registered while the job runs, e.g. a v2) -> the task fails with SCHEMA_CHANGED
before anything of the batch is written, and the job restarts the query from its checkpoint with
a plan that includes it (streaming/job.py `run_query`). The batch is then re-read, same offsets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql.avro.functions import from_avro

from conf.settings import Settings, registry_client_conf
from conf.spark_worker import lean_imports
from contract import avro, wire
from contract.events import FIELD_TYPES, ITEM_FIELDS, ORDER, ORDER_FIELDS, PAYMENT_FIELDS
from streaming.source import MALFORMED, PARSED, TopicParser, detail_of, for_shape, parsed_batch

logger = logging.getLogger(__name__)
SCHEMA_CHANGED = "PIPELINE_SCHEMA_CHANGED"  # in the failure of a query that must be re-planned


class SchemaChanged(RuntimeError):
    """A message names a schema id the registry has and the query's plan has not."""


def _client(conf: dict[str, Any]) -> Any:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient(conf)


def subject_schemas(conf: dict[str, Any], subject: str) -> dict[int, Any]:
    """Every schema id registered under `subject` -> its schema (parsed JSON); {} if none."""
    from confluent_kafka.schema_registry import SchemaRegistryError

    sr = _client(conf)
    try:
        versions = sr.get_versions(subject)
    except SchemaRegistryError as exc:
        if exc.http_status_code == 404:
            return {}
        raise
    found = {}
    for v in versions:
        reg = sr.get_version(subject, v)
        found[reg.schema_id] = json.loads(reg.schema.schema_str)
    return found


def lookup(conf: dict[str, Any], subject: str) -> Callable[[int], tuple[Any, bool]]:
    """schema id -> (its schema from the registry or None when it has no such id, whether it is
    one of `subject`'s versions now)."""
    from confluent_kafka.schema_registry import SchemaRegistryError

    sr = _client(conf)

    def get(schema_id: int) -> tuple[Any, bool]:
        try:
            found = json.loads(sr.get_schema(schema_id).schema_str)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return None, False
            raise
        return found, schema_id in subject_schemas(conf, subject)

    return get


def avro_row(kind: str, key: bytes | None, value: bytes | None, kafka_ts: int, record: Any,
             writer_of: avro.Writers, limits: dict[str, Any]) -> tuple[Any, ...]:  # fmt: skip
    """One record's COMPUTED columns (as streaming.source.parsed_row), `record` being what
    from_avro decoded (NULL fields: it did not)."""
    try:
        decode = lambda *_: avro.with_texts(kind, record)  # noqa: E731 - strict UTF-8 here
        f = avro.parse(kind, key, value, writer_of, decode, kafka_ts=kafka_ts, **limits)
    except wire.Invalid as exc:
        return (MALFORMED, wire.preview(key) or "", None, None, None, None, None, None, str(exc))
    return detail_of(kind, f)


ArrowFn = Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def parser(kind: str, limits: dict[str, Any], planned: dict[int, Any],
           conf: dict[str, Any], subject: str) -> ArrowFn:  # fmt: skip
    """The mapInArrow function of a topic: (key, value, kafka_ts, decoded, ...) -> PARSED."""

    def parse_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        lean_imports()
        seen: dict[int, Any] = dict(planned)
        get = None

        def writer_of(schema_id: int) -> Any:
            nonlocal get
            if schema_id not in seen:
                get = get or lookup(conf, subject)
                seen[schema_id], ours = get(schema_id)
                if ours:  # registered for this topic after the plan was made: re-plan
                    raise SchemaChanged(f"{SCHEMA_CHANGED} schema_id={schema_id}")
                # another subject's schema: decided by it (a Payment on the orders topic is
                # not_an_object); never decoded, as the plan holds this subject's only
            return seen[schema_id]

        for batch in batches:
            keys, values = batch.column("key").to_pylist(), batch.column("value").to_pylist()
            kafka_ts = batch.column("kafka_ts").to_pylist()
            records = batch.column("decoded").to_pylist()
            rows = [
                avro_row(kind, k, v, ts, r, writer_of, limits)
                for k, v, ts, r in zip(keys, values, kafka_ts, records, strict=True)
            ]
            yield parsed_batch(batch, rows)

    return parse_batches


def decoded_column(kind: str, writers: dict[int, Any]) -> Any:
    """The CASE over the planned schema ids, each branch Spark's from_avro with its writer."""
    value = sf.col("value")
    framed = (sf.length(value) >= avro.HEADER) & (sf.substring(value, 1, 1) == sf.lit(b"\x00"))
    schema_id = sf.when(framed, sf.conv(sf.hex(sf.substring(value, 2, 4)), 16, 10).cast("long"))
    body = sf.substring(value, avro.HEADER + 1, 2**31 - 1)
    reader = avro.reader_json(kind)
    options = {"mode": "PERMISSIVE", "avroSchema": reader}
    # a branch that never matches (ids are positive) gives the column its type with no writers
    decoded = sf.when(schema_id == -1, from_avro(body, reader, options))
    for sid, writer in sorted(writers.items()):
        if avro.schema_problem(kind, writer) is None:
            text = json.dumps(avro.plain(writer), separators=(",", ":"))
            decoded = decoded.when(schema_id == sid, from_avro(body, text, options))
    return strings_as_bytes(decoded, ORDER_FIELDS if kind == ORDER else PAYMENT_FIELDS)


def strings_as_bytes(record: Any, names: tuple[str, ...]) -> Any:
    """The decoded struct with its string fields as their raw bytes: Spark's Avro reader keeps
    a string's bytes unchecked, and Arrow would fail the whole task on one that is not UTF-8;
    as bytes, `contract.avro.with_texts` checks each record and dead-letters the bad one."""
    for name in names:
        if FIELD_TYPES[name] == "string":
            record = record.withField(name, record.getField(name).cast("binary"))
        elif FIELD_TYPES[name] == "items":
            items = sf.transform(record.getField(name), lambda i: strings_as_bytes(i, ITEM_FIELDS))
            record = record.withField(name, items)
    return record


def topic_parser(s: Settings) -> TopicParser:
    """The parser streaming.source.read_events runs on each topic with PIPELINE_FORMAT=avro."""
    limits = {
        "max_bytes": s.pipeline.max_message_bytes,
        "max_future_ms": s.pipeline.max_future_s * 1000,
    }
    buckets = s.pipeline.state_buckets

    def parse(df: DataFrame, kind: str, topic: str) -> DataFrame:
        return parse_topic(df, kind, buckets, limits, s, topic)

    return parse


def parse_topic(kafka_df: DataFrame, kind: str, buckets: int, limits: dict[str, Any],
                s: Settings, topic: str) -> DataFrame:  # fmt: skip
    """Kafka rows of `topic` -> PARSED rows with `bucket` and `event_time` (as the JSON path)."""
    conf = registry_client_conf(s.registry, s.wire)
    writers = subject_schemas(conf, avro.subject(topic))
    logger.info("avro plan topic=%s schema_ids=%s", topic, sorted(writers))
    records = kafka_df.select(
        "key", "value", "topic", "partition", "offset",
        sf.unix_millis(sf.col("timestamp")).alias("kafka_ts"),
    )  # fmt: skip
    records = records.withColumn("decoded", decoded_column(kind, writers))
    parsed = records.mapInArrow(parser(kind, limits, writers, conf, avro.subject(topic)), PARSED)
    return for_shape(parsed, buckets)


__all__ = ["SCHEMA_CHANGED", "SchemaChanged", "parse_topic", "topic_parser"]
