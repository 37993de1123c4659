"""The Kafka settings checked against the broker before anything starts, and librdkafka's errors
told as the setting at fault.

    check_kafka(settings.kafka)   # one metadata request; raises KafkaCheckError

A bad password, an untrusted certificate or the wrong protocol would otherwise make a client
retry quietly until a timeout. Here the client's error callback is watched while it fetches the
metadata, so such a setting fails within about a second, as one line that names it
(`KafkaCheckError.setting`). A broker that is merely unreachable is reported once the timeout
has passed, with `setting` None. The password is never part of a message: librdkafka does not
put it in its errors, and `explain` removes it anyway.

The producers (`producers.topics.ensure_topics`), the job (`python -m streaming`) and the local
stack (`scripts/kafka_auth.py`) all check through here.
"""

from __future__ import annotations

import time
from typing import Any

from conf.settings import KafkaSettings

# librdkafka's own error codes (confluent_kafka.KafkaError._AUTHENTICATION etc.)
AUTHENTICATION, SSL, INVALID_ARG = -169, -181, -186
SASL_AUTHENTICATION_FAILED = 58  # the broker's error code


class KafkaCheckError(RuntimeError):
    """Kafka refused or could not be reached. One line; `setting` names the environment
    variable at fault (None when the broker did not answer at all)."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


def _scrub(text: str, kafka: KafkaSettings) -> str:
    secret = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
    return " ".join((text.replace(secret, "***") if secret else text).split())  # one line


def blame(code: int, text: str) -> tuple[str, str] | None:
    """(setting, what is wrong) for a librdkafka error that a setting causes; None for errors
    no setting explains (a broker down, a timeout)."""
    low = text.lower()
    if "ssl.ca.location" in low or "certificate verify failed" in low:
        return ("KAFKA_SSL_CA_LOCATION", "the broker's certificate is not trusted, or the CA file "
                "cannot be read")  # fmt: skip
    if "supported mechanisms" in low or "unsupported sasl mechanism" in low:
        return ("KAFKA_SASL_MECHANISM", "the broker does not offer this SASL mechanism")
    if code in (AUTHENTICATION, SASL_AUTHENTICATION_FAILED) or "sasl authentication" in low:
        return ("KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD", "the broker refused the credentials")
    if "security.protocol" in low or "plaintext broker listener" in low or code == SSL:
        return ("KAFKA_SECURITY_PROTOCOL", "the listener speaks another security protocol")
    if code == INVALID_ARG and ("sasl" in low or "ssl" in low):
        return ("KAFKA_SECURITY_PROTOCOL", "the client could not be configured")
    return None


def explain(error: Any, kafka: KafkaSettings) -> KafkaCheckError:
    """A KafkaCheckError for a librdkafka `KafkaError` (or any error), naming the setting at
    fault when one is. The message is one line and never holds the password."""
    code = error.code() if hasattr(error, "code") else 0
    text = _scrub(error.str() if hasattr(error, "str") else str(error), kafka)
    at = f"Kafka at {kafka.bootstrap_servers} ({kafka.security_protocol}"
    at += f", {kafka.sasl_mechanism})" if kafka.security_protocol.startswith("SASL") else ")"
    found = blame(code, text)
    if found is None:
        return KafkaCheckError(f"{at} failed: {text}")
    setting, what = found
    return KafkaCheckError(f"{at}: {what}; check {setting}: {text}", setting)


def check_kafka(kafka: KafkaSettings, timeout_s: float = 10.0) -> int:
    """Fetch the cluster's metadata once with `kafka`'s settings; return the number of brokers.

    Raises KafkaCheckError as soon as the client reports an error a setting explains (usually
    within a second), or after `timeout_s` when the broker never answered."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []
    conf: dict[str, Any] = {**kafka.client_config(), "error_cb": errors.append, "log_level": 0}
    try:
        admin = AdminClient(conf)
    except KafkaException as exc:  # e.g. a CA file that cannot be read
        raise explain(exc.args[0], kafka) from None
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        try:
            meta = admin.list_topics(timeout=max(0.05, min(0.5, deadline - time.monotonic())))
            if meta.brokers:
                return len(meta.brokers)
        except KafkaException as exc:
            last = exc.args[0]
        admin.poll(0)  # serves error_cb
        for err in errors:
            if blame(err.code(), err.str()) is not None:
                raise explain(err, kafka)
        if time.monotonic() >= deadline:
            reason = errors[-1] if errors else last or f"no answer within {timeout_s:.0f}s"
            error = explain(reason, kafka)
            raise KafkaCheckError(f"{error}; check KAFKA_BOOTSTRAP_SERVERS", error.setting)
