"""The local broker's SASL_SSL listener, as Confluent Cloud runs Kafka (STACK_KAFKA_SASL_PORT).

With the setting at 0 (the default) nothing here runs. Otherwise `scripts/stack.py` calls:
  prepare(s, server_properties)   before the broker starts: a self-signed CA and the broker's
                                  certificate (openssl, made once), the stack's user and its
                                  password (generated once), the listener's properties, and
                                  client.env with the settings a client sets to connect
  after_start(s, svc, timeout)    once the broker answers on PLAINTEXT: the user's SCRAM-SHA-512
                                  credential (an upsert over the PLAINTEXT listener), then a
                                  real login over SASL_SSL with each mechanism

The listener offers PLAIN (users in its JAAS config, as Confluent Cloud's API keys are used) and
SCRAM-SHA-512 (credentials in the KRaft metadata). The controller and the default listener stay
PLAINTEXT. Everything lives in STACK_DIR/kafka/sasl/ (mode 0700): ca.pem (what clients trust,
KAFKA_SSL_CA_LOCATION), the CA's and broker's keys, the broker's PKCS12 keystore, users.json
and client.env. The passwords are test-only values of this stack; never in the repo.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from conf.kafka_check import KafkaCheckError, check_kafka
from conf.settings import KafkaSettings, Settings, jaas_quote
from scripts.stack import Service, StackError, running_pid

USER = "pipeline"
MECHANISMS = ("PLAIN", "SCRAM-SHA-512")
SCRAM_ITERATIONS = 8192
LISTENER = "SASL_SSL"
PREFIX = f"listener.name.{LISTENER.lower()}."

OPENSSL_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = payments-pipeline local test CA
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[broker]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class User:
    name: str
    password: str = field(repr=False)


def sasl_dir(s: Settings) -> Path:
    return Path(s.stack.dir).resolve() / "kafka" / "sasl"


def ca_file(s: Settings) -> Path:
    """The CA certificate (PEM) clients trust: KAFKA_SSL_CA_LOCATION."""
    return sasl_dir(s) / "ca.pem"


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)


def _openssl(d: Path, *args: str) -> None:
    done = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise StackError(f"openssl {args[0]} failed: {done.stderr.strip()[-500:]}")


def ensure_tls(d: Path, cn: str = "localhost") -> None:
    """A self-signed CA, and the broker's key and certificate (for 127.0.0.1 and localhost)
    signed by it, in a PKCS12 keystore. Made once; kept while the files are there."""
    if all((d / n).exists() for n in ("ca.pem", "broker.p12", "keystore.pass")):
        return
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    (d / "openssl.cnf").write_text(OPENSSL_CNF)
    write_private(d / "keystore.pass", secrets.token_urlsafe(24))
    cnf, days = ("-config", "openssl.cnf"), ("-days", "3650")
    new_key = ("-newkey", "rsa:2048", "-nodes")
    _openssl(d, "req", "-x509", *cnf, "-extensions", "ca", *new_key, "-keyout", "ca.key",
             "-out", "ca.pem", *days)  # fmt: skip
    _openssl(d, "req", "-new", *cnf, *new_key, "-keyout", "broker.key", "-out", "broker.csr",
             "-subj", f"/CN={cn}")  # fmt: skip
    _openssl(d, "x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "broker.pem", *days, "-sha256",
             "-extfile", "openssl.cnf", "-extensions", "broker")  # fmt: skip
    # the password from a file: never on a command line
    _openssl(d, "pkcs12", "-export", "-in", "broker.pem", "-inkey", "broker.key", "-certfile",
             "ca.pem", "-name", "broker", "-out", "broker.p12",
             "-passout", "file:keystore.pass")  # fmt: skip


def stack_user(s: Settings) -> User:
    """The stack's one user (PLAIN and SCRAM-SHA-512), its password generated on first use."""
    path = sasl_dir(s) / "users.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps({USER: secrets.token_urlsafe(18)}))
    name, password = next(iter(json.loads(path.read_text()).items()))
    return User(name, password)


def _prop(value: str) -> str:
    """A value as java.util.Properties reads it back (backslash is its escape character)."""
    return value.replace("\\", "\\\\")


def broker_properties(s: Settings, base: str, user: User) -> str:
    """`base` (server.properties) with the SASL_SSL listener added."""
    d, port = sasl_dir(s), s.stack.kafka_sasl_port
    props = dict(line.split("=", 1) for line in base.splitlines() if "=" in line)
    props["listeners"] += f",{LISTENER}://127.0.0.1:{port}"
    props["advertised.listeners"] += f",{LISTENER}://127.0.0.1:{port}"
    props["listener.security.protocol.map"] += f",{LISTENER}:{LISTENER}"
    plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
    keystore_password = (d / "keystore.pass").read_text().strip()
    props.update(
        {
            "sasl.enabled.mechanisms": ",".join(MECHANISMS),
            f"{PREFIX}plain.sasl.jaas.config": _prop(
                f"{plain} required user_{user.name}={jaas_quote(user.password)};"
            ),
            f"{PREFIX}scram-sha-512.sasl.jaas.config": f"{scram} required;",
            f"{PREFIX}ssl.keystore.type": "PKCS12",
            f"{PREFIX}ssl.keystore.location": str(d / "broker.p12"),
            f"{PREFIX}ssl.keystore.password": keystore_password,
            f"{PREFIX}ssl.key.password": keystore_password,
            # a failed login is answered after this delay, not at once (Kafka's default is 100)
            "connection.failed.authentication.delay.ms": "100",
        }
    )
    return "".join(f"{k}={v}\n" for k, v in props.items())


def client_settings(s: Settings, mechanism: str = "SCRAM-SHA-512", user: User | None = None,
                    password: str | None = None) -> KafkaSettings:  # fmt: skip
    """The KAFKA_* settings of a client of this listener (`password` replaces the user's)."""
    from pydantic import SecretStr

    user = user or stack_user(s)
    return KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{s.stack.kafka_sasl_port}",
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username=user.name,
        sasl_password=SecretStr(user.password if password is None else password),
        ssl_ca_location=str(ca_file(s)),
    )


def client_env(s: Settings, k: KafkaSettings) -> dict[str, str]:
    """The environment variables of `k` (a client of this listener)."""
    return {
        "STACK_KAFKA_SASL_PORT": str(s.stack.kafka_sasl_port),
        "KAFKA_BOOTSTRAP_SERVERS": k.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": k.security_protocol,
        "KAFKA_SASL_MECHANISM": k.sasl_mechanism,
        "KAFKA_SASL_USERNAME": k.sasl_username or "",
        "KAFKA_SASL_PASSWORD": k.sasl_password.get_secret_value() if k.sasl_password else "",
        "KAFKA_SSL_CA_LOCATION": k.ssl_ca_location or "",
    }


def prepare(s: Settings, server_properties: Path) -> None:
    """Before the broker starts: certificates, the user, the listener's properties (the file
    becomes private: it holds the passwords) and client.env."""
    d = sasl_dir(s)
    ensure_tls(d)
    user = stack_user(s)
    write_private(server_properties, broker_properties(s, server_properties.read_text(), user))
    env = client_env(s, client_settings(s, user=user))
    head = ("# The local SASL_SSL listener's client settings (scripts/kafka_auth.py): test-only\n"
            "# credentials of this stack. Use: set -a; . <this file>; set +a\n")  # fmt: skip
    write_private(d / "client.env", head + "".join(f"{k}={v}\n" for k, v in env.items()))


def upsert_scram_user(plaintext: str, user: User, timeout_s: float = 30.0) -> None:
    """The user's SCRAM-SHA-512 credential in the KRaft metadata (as `kafka-configs --alter
    --add-config SCRAM-SHA-512=[...]` does), over the PLAINTEXT listener."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin = AdminClient({"bootstrap.servers": plaintext, "log_level": 0})
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upsert = UserScramCredentialUpsertion(user.name, info, user.password.encode())
    for future in admin.alter_user_scram_credentials([upsert], request_timeout=timeout_s).values():
        future.result(timeout=timeout_s)


def _listening(port: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def after_start(s: Settings, svc: Service, timeout_s: float) -> None:
    """Once the broker answers on PLAINTEXT: the SCRAM credential, then wait until a client
    logs in over SASL_SSL with each mechanism (SCRAM credentials reach the listener through
    the metadata log, a moment after the upsert)."""
    port = s.stack.kafka_sasl_port
    if not _listening(port):
        raise StackError(
            f"kafka answers on {s.stack.kafka_port} but nothing listens on {port}: the broker "
            "was started without STACK_KAFKA_SASL_PORT; stop the stack and start it again"
        )
    user = stack_user(s)
    upsert_scram_user(f"127.0.0.1:{s.stack.kafka_port}", user, timeout_s)
    deadline = time.monotonic() + timeout_s
    for mechanism in MECHANISMS:
        while True:
            try:
                check_kafka(client_settings(s, mechanism, user), timeout_s=5.0)
                break
            except KafkaCheckError as exc:
                if running_pid(svc) is None or time.monotonic() > deadline:
                    raise StackError(f"SASL_SSL login with {mechanism} failed: {exc}") from None
                time.sleep(0.5)
