"""The producers' only contact with the schema registry (PIPELINE_FORMAT=avro): register the
order and payment schemas under TopicNameStrategy subjects with the configured compatibility,
and serialize with confluent-kafka's AvroSerializer (Confluent's framing, the registry's ids).

A schema the registry refuses (incompatible with the subject's versions: HTTP 409) or a registry
that cannot be reached ends the command with one line (`RegistryRefused`, `RegistryUnreachable`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from conf.settings import Settings, registry_client_conf
from contract import avro
from producers import serde

logger = logging.getLogger(__name__)
AVSC_DIR = Path(avro.__file__).resolve().parent / "avsc"
SCHEMA_FILES = {serde.ORDERS: AVSC_DIR / "order.avsc", serde.PAYMENTS: AVSC_DIR / "payment.avsc"}


class RegistryRefused(ValueError):
    """The registry refused a schema: the message names the subject, the compatibility and why."""


class RegistryUnreachable(RuntimeError):
    """The registry did not answer (or not as a Confluent-compatible registry)."""


def client(settings: Settings) -> SchemaRegistryClient:
    return SchemaRegistryClient(registry_client_conf(settings.registry, settings.wire))


def _fail(what: str, url: str, exc: Exception) -> Exception:
    if isinstance(exc, SchemaRegistryError) and exc.http_status_code in (409, 422):
        return RegistryRefused(f"{what}: HTTP {exc.http_status_code}: {exc.error_message}")
    if isinstance(exc, SchemaRegistryError) and exc.http_status_code in (401, 403):
        return RegistryRefused(
            f"{what}: HTTP {exc.http_status_code}: check SCHEMA_REGISTRY_USERNAME/PASSWORD"
        )
    # never the exception's text whole: an URL with credentials in it would be shown
    return RegistryUnreachable(f"{what}: schema registry at {url} not reachable "
                               f"({type(exc).__name__}); check SCHEMA_REGISTRY_URL")  # fmt: skip


@dataclass
class Registered:
    """What the producers registered: topic kind -> schema id, and the serializers."""

    ids: dict[str, int]
    schemas: dict[str, dict[str, Any]]
    serializers: dict[str, AvroSerializer]
    topics: dict[str, str]

    def encode(self, kind: str, record: dict[str, Any]) -> bytes:
        ctx = SerializationContext(self.topics[kind], MessageField.VALUE)
        framed = self.serializers[kind](record, ctx)
        if framed is None:  # only for a None record, which the producers never pass
            raise ValueError(f"no Avro frame for a {kind} record")
        return framed


def register(settings: Settings, topics: dict[str, str],
             files: dict[str, Path] | None = None) -> Registered:  # fmt: skip
    """Set each subject's compatibility, register its schema (the same schema again returns its
    id), and build the serializers (which never register on their own)."""
    files = {**SCHEMA_FILES, **(files or {})}
    sr = client(settings)
    url = registry_client_conf(settings.registry, settings.wire)["url"].split("@")[-1]
    level = settings.registry.compatibility
    ids, schemas, sers = {}, {}, {}
    for kind, topic in topics.items():
        subj = avro.subject(topic)
        text = files[kind].read_text()
        what = f"schema {files[kind].name} for subject {subj} (compatibility {level})"
        try:
            sr.set_compatibility(subj, level)
            ids[kind] = sr.register_schema(subj, Schema(text, "AVRO"))
        except Exception as exc:  # noqa: BLE001 - told in one line, by kind
            raise _fail(what, url, exc) from None
        schemas[kind] = json.loads(text)
        # the id just registered: Apicurio's lookup by schema text (what the serializer does
        # by default) finds no match for a schema with `doc`s in it
        sers[kind] = AvroSerializer(
            sr, text, conf={"auto.register.schemas": False, "use.schema.id": ids[kind]}
        )
        logger.info("event=schema_registered subject=%s id=%d file=%s", subj, ids[kind],
                    files[kind].name)  # fmt: skip
    return Registered(ids, schemas, sers, dict(topics))


def writers(settings: Settings, subjects: list[str]) -> dict[int, Any]:
    """Every schema id registered under `subjects` -> its schema (parsed JSON)."""
    sr = client(settings)
    found: dict[int, Any] = {}
    for subj in subjects:
        for version in sr.get_versions(subj):
            reg = sr.get_version(subj, version)
            if reg.schema_id is not None and reg.schema.schema_str is not None:
                found[reg.schema_id] = json.loads(reg.schema.schema_str)
    return found
