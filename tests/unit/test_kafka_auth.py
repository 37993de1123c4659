"""Kafka with authentication, without a broker: the clients' settings per protocol and SASL
mechanism, the setting each librdkafka error blames, the broker's SASL_SSL listener properties,
and Spark's redaction of the JAAS option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from conf.kafka_check import AUTHENTICATION, INVALID_ARG, SSL, blame, explain
from conf.settings import KafkaSettings, SettingsError, StackSettings, load_settings

SECRET = 'p"a\\ss-S3cret'
PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


def kafka(**kw: object) -> KafkaSettings:
    base: dict[str, object] = dict(
        bootstrap_servers="broker:9094", security_protocol="SASL_SSL", sasl_username="key",
        sasl_password=SecretStr(SECRET), ssl_ca_location="/ca.pem",
    )  # fmt: skip
    return KafkaSettings(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mechanism", "module"),
    [("PLAIN", PLAIN_MODULE), ("SCRAM-SHA-256", SCRAM_MODULE), ("SCRAM-SHA-512", SCRAM_MODULE)],
)
def test_spark_options_per_mechanism(mechanism: str, module: str) -> None:
    opts = kafka(sasl_mechanism=mechanism).spark_options()
    assert opts["kafka.sasl.mechanism"] == mechanism
    # the password's quote and backslash escaped as Kafka's JAAS parser reads them back
    assert opts["kafka.sasl.jaas.config"] == (
        f'{module} required username="key" password="p\\"a\\\\ss-S3cret";'
    )
    assert opts["kafka.security.protocol"] == "SASL_SSL"
    assert opts["kafka.ssl.truststore.type"] == "PEM"
    assert opts["kafka.ssl.truststore.location"] == "/ca.pem"


def test_client_config_has_the_ca_only_with_tls() -> None:
    conf = kafka(sasl_mechanism="SCRAM-SHA-512").client_config()
    assert conf["ssl.ca.location"] == "/ca.pem" and conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.password"] == SECRET
    for protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
        k = kafka(security_protocol=protocol)
        assert "ssl.ca.location" not in k.client_config()
        assert "kafka.ssl.truststore.location" not in k.spark_options()
    assert "sasl.password" not in kafka(security_protocol="SSL").client_config()
    assert SECRET not in repr(kafka()) and SECRET not in str(kafka().model_dump())


def test_unknown_mechanism_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-1")
    with pytest.raises(SettingsError, match="KAFKA_SASL_MECHANISM='SCRAM-SHA-1'"):
        load_settings(Path("/nonexistent.env"))


BLAMES = [  # (librdkafka code, its text, the setting blamed); texts as librdkafka words them
    (AUTHENTICATION, "sasl_ssl://127.0.0.1:29194/bootstrap: SASL authentication error: "
     "Authentication failed: Invalid username or password (after 104ms in state AUTH_REQ)",
     "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD"),
    (AUTHENTICATION, "SASL authentication error: Authentication failed during authentication "
     "due to invalid credentials with SASL mechanism SCRAM-SHA-512",
     "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD"),
    (AUTHENTICATION, "SASL SCRAM-SHA-256 mechanism handshake failed: Broker: Unsupported SASL "
     "mechanism: broker's supported mechanisms: PLAIN,SCRAM-SHA-512", "KAFKA_SASL_MECHANISM"),
    (SSL, "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker "
     "certificate could not be verified, verify that ssl.ca.location is correctly configured",
     "KAFKA_SSL_CA_LOCATION"),
    (INVALID_ARG, "Failed to create producer: ssl.ca.location failed: error:80000002:system "
     "library::No such file or directory", "KAFKA_SSL_CA_LOCATION"),
    (SSL, "SSL handshake failed: Disconnected: connecting to a PLAINTEXT broker listener?",
     "KAFKA_SECURITY_PROTOCOL"),
    (-195, "Disconnected while requesting ApiVersion: might be caused by incorrect "
     "security.protocol configuration (connecting to a SSL listener?)", "KAFKA_SECURITY_PROTOCOL"),
    (-195, "Connect to ipv4#127.0.0.1:1 failed: Connection refused", None),
    (-187, "2/2 brokers are down", None),
]  # fmt: skip


@pytest.mark.parametrize(("code", "text", "setting"), BLAMES)
def test_each_error_blames_its_setting(code: int, text: str, setting: str | None) -> None:
    found = blame(code, text)
    assert (found[0] if found else None) == setting


def test_explain_is_one_line_without_the_password() -> None:
    err = explain(f"Authentication failed:\n{SECRET} rejected", kafka())
    text = str(err)
    assert SECRET not in text and "\n" not in text
    assert text.startswith("Kafka at broker:9094 (SASL_SSL, PLAIN)")


def test_the_listener_properties(tmp_path: Path) -> None:
    from conf.settings import Settings
    from scripts import kafka_auth, stack

    st = StackSettings(dir=str(tmp_path), kafka_port=1092, kafka_controller_port=1093,
                       kafka_sasl_port=1094)  # fmt: skip
    s = Settings(stack=st)
    d = kafka_auth.sasl_dir(s)
    d.mkdir(parents=True)
    (d / "keystore.pass").write_text("ks-pass\n")
    user = kafka_auth.User("pipeline", 'pw"\\x')
    text = kafka_auth.broker_properties(s, stack.kafka_properties(s, tmp_path / "data"), user)
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["listeners"].endswith(",SASL_SSL://127.0.0.1:1094")
    assert props["listeners"].startswith("PLAINTEXT://127.0.0.1:1092,CONTROLLER://")
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1092,SASL_SSL://127.0.0.1:1094"
    assert props["listener.security.protocol.map"].endswith(",SASL_SSL:SASL_SSL")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "PLAIN,SCRAM-SHA-512"
    # java.util.Properties unescapes once, Kafka's JAAS parser once more
    jaas = props["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    assert jaas == f'{PLAIN_MODULE} required user_pipeline="pw\\\\"\\\\\\\\x";'
    assert props["listener.name.sasl_ssl.ssl.keystore.password"] == "ks-pass"
    assert repr(user) == "User(name='pipeline')"


def test_spark_redacts_the_jaas_option() -> None:
    from streaming.session import REDACTION_REGEX

    pattern = re.compile(REDACTION_REGEX)
    assert pattern.search("kafka.sasl.jaas.config")
    assert pattern.search("spark.some.password") and not pattern.search("kafka.bootstrap.servers")


def test_the_sasl_listener_is_the_local_broker() -> None:
    from conf.settings import Settings

    sasl = KafkaSettings(bootstrap_servers="localhost:9094")
    assert Settings(kafka=sasl, stack=StackSettings(kafka_sasl_port=9094)).kafka_is_local
    assert not Settings(kafka=sasl, stack=StackSettings(kafka_sasl_port=0)).kafka_is_local
    plain = KafkaSettings(bootstrap_servers="127.0.0.1:9092")
    assert Settings(kafka=plain, stack=StackSettings(kafka_port=9092)).kafka_is_local
