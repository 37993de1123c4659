"""The Kafka Connect path's pure parts, no JVM: the worker's properties (Kafka security for the
worker and its connectors' clients, the config provider, names from the group id), the .properties
escaping, and the sink's config rendered from conf/connect/mongo-sink.json."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from conf.settings import (
    ConnectSettings,
    KafkaSettings,
    MongoSettings,
    Settings,
    StackSettings,
    TopicSettings,
)
from scripts import connect

PASSWORD = 'p"w\\d'  # a quote and a backslash: both must survive JAAS and .properties quoting
ATLAS = "mongodb+srv://app:s3cret@cluster0.example.mongodb.net/?retryWrites=true"


def sasl_settings() -> Settings:
    kafka = KafkaSettings(
        bootstrap_servers="broker.example:9092",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="api-key",
        sasl_password=SecretStr(PASSWORD),
        ssl_ca_location="/etc/ca.pem",
    )
    return Settings(
        kafka=kafka,
        stack=StackSettings(dir="/srv/stack", connect_port=18083),
        connect=ConnectSettings(group_id="payments-connect-a"),
        mongo=MongoSettings(uri=SecretStr(ATLAS), database="payments_x"),
        topics=TopicSettings(partitions=6, dead_letters="dlq.x", connect_errors="errors.x"),
    )


def test_worker_gets_the_kafka_security_bare_and_for_each_client() -> None:
    props = connect.worker_properties(sasl_settings())
    assert props["bootstrap.servers"] == "broker.example:9092"
    for prefix in ("", "producer.", "consumer.", "admin."):
        assert props[f"{prefix}security.protocol"] == "SASL_SSL"
        assert props[f"{prefix}sasl.mechanism"] == "SCRAM-SHA-512"
        assert props[f"{prefix}ssl.truststore.type"] == "PEM"
        assert props[f"{prefix}ssl.truststore.location"] == "/etc/ca.pem"
        jaas = props[f"{prefix}sasl.jaas.config"]
        assert jaas.startswith("org.apache.kafka.common.security.scram.ScramLoginModule required")
        assert 'password="p\\"w\\\\d";' in jaas
    assert not any(k.startswith("kafka.") for k in props)


def test_worker_names_come_from_its_group_id_and_port() -> None:
    props = connect.worker_properties(sasl_settings())
    assert props["group.id"] == "payments-connect-a"
    assert {props[f"{x}.storage.topic"] for x in ("config", "offset", "status")} == {
        "payments-connect-a.configs",
        "payments-connect-a.offsets",
        "payments-connect-a.status",
    }
    assert all(props[f"{x}.storage.replication.factor"] == "1" for x in ("config", "offset"))
    assert props["listeners"] == "http://127.0.0.1:18083"
    assert props["plugin.path"] == "/srv/stack/connect/plugins"
    assert props["config.providers"] == "env"
    assert props["config.providers.env.class"].endswith(".EnvVarConfigProvider")
    assert props["config.providers.env.param.allowlist.pattern"] == "^MONGO_URI$"


def test_plaintext_worker_has_no_security_settings() -> None:
    props = connect.worker_properties(Settings(kafka=KafkaSettings()))
    assert not any("security" in k or "sasl" in k or "ssl" in k for k in props)
    assert "producer.bootstrap.servers" in props


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain", "plain"),
        ('a\\b"c', 'a\\\\b"c'),  # .properties reads `\` as an escape
        ("x=y:z", "x=y:z"),  # separators after the first one are the value's
        ("é", "\\u00e9"),  # read as ISO-8859-1
        ("line\nnext", "line\\nnext"),
        (" lead", "\\ lead"),
    ],
)
def test_properties_text_escapes_for_java(value: str, written: str) -> None:
    assert connect.properties_text({"k": value}) == f"k={written}\n"


def test_render_names_everything_from_the_settings_and_hides_the_uri() -> None:
    s = sasl_settings()
    config = connect.render(s)
    t, m = s.topics, s.mongo
    assert config["topics"] == f"{t.outcomes},{t.orphans},{t.dead_letters}"
    assert config[f"topic.override.{t.outcomes}.collection"] == m.outcomes_collection
    assert config[f"topic.override.{t.orphans}.collection"] == m.orphans_collection
    assert config[f"topic.override.{t.dead_letters}.collection"] == m.dead_letters_collection
    assert config["database"] == "payments_x"
    assert config["tasks.max"] == "6"
    assert config["errors.tolerance"] == "all"
    assert config["errors.deadletterqueue.topic.name"] == "errors.x"
    assert config["writemodel.strategy"].endswith(".UpdateOneDefaultStrategy")
    assert config["connection.uri"] == "${env:MONGO_URI}"
    text = json.dumps(config)
    assert "s3cret" not in text and "{{" not in text


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ('{"a": "{{mongo.uri}}"}', "cannot be rendered"),  # a secret never goes in
        ('{"a": "{{mongo.nope}}"}', "unknown placeholder"),
        ('{"a": "{{stack.dir}}"}', "unknown placeholder"),
    ],
)
def test_render_refuses_secrets_and_unknown_names(template: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        connect.render(sasl_settings(), template)


def test_service_and_url() -> None:
    s = sasl_settings()
    svc = connect.service(s)
    assert svc.marker in " ".join(svc.cmd) and "-Xmx512m" in svc.cmd
    assert str(svc.home) == "/srv/stack/connect"
    assert connect.base_url(s) == "http://127.0.0.1:18083"
    remote = s.model_copy(update={"connect": ConnectSettings(url="https://connect.example/")})
    assert connect.base_url(remote) == "https://connect.example"
