"""The one settings object of the project.

Every value comes from an environment variable (or `.env`, loaded by the entry point with
python-dotenv, never at import). Each group below is a frozen pydantic-settings model whose
env prefix is named in its docstring; `.env.example` lists every variable. Secrets are
`SecretStr`: they print as `***` and never reach a log line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from dotenv import load_dotenv
from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.rules import Rules

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = REPO_ROOT / ".stack"


def _group(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, frozen=True, extra="ignore")


class KafkaSettings(BaseSettings):
    """KAFKA_*: where the broker is and how to authenticate (Confluent Cloud uses SASL_SSL)."""

    model_config = _group("KAFKA_")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="KAFKA_BOOTSTRAP_SERVERS")
    security_protocol: Literal["PLAINTEXT", "SASL_SSL", "SASL_PLAINTEXT", "SSL"] = Field(
        "PLAINTEXT", description="KAFKA_SECURITY_PROTOCOL"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="KAFKA_SASL_MECHANISM"
    )
    sasl_username: str | None = Field(None, description="KAFKA_SASL_USERNAME (API key)")
    sasl_password: SecretStr | None = Field(None, description="KAFKA_SASL_PASSWORD (API secret)")
    # A PEM file of the CA(s) that signed the broker's certificate (SSL, SASL_SSL). Unset: the
    # system's CAs, which Confluent Cloud needs. On a cluster the file must exist on every node.
    ssl_ca_location: str | None = Field(None, description="KAFKA_SSL_CA_LOCATION")

    def client_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka (confluent-kafka) settings; contains the secret, never log it."""
        conf: dict[str, str | int | float | bool] = {"bootstrap.servers": self.bootstrap_servers}
        if self.security_protocol != "PLAINTEXT":
            conf["security.protocol"] = self.security_protocol
        if self.security_protocol.startswith("SASL"):
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else ""
            )
        if self.ssl_ca_location and self.security_protocol.endswith("SSL"):
            conf["ssl.ca.location"] = self.ssl_ca_location
        return conf

    def spark_options(self) -> dict[str, str]:
        """Options for Spark's Kafka source/sink (`kafka.`-prefixed Java client settings). The
        JAAS option holds the secret: Spark redacts it (its value matches spark.redaction.regex,
        and the session adds `jaas` to the patterns, streaming/session.py); never log it."""
        opts = {"kafka.bootstrap.servers": self.bootstrap_servers}
        if self.security_protocol != "PLAINTEXT":
            opts["kafka.security.protocol"] = self.security_protocol
        if self.security_protocol.startswith("SASL"):
            secret = self.sasl_password.get_secret_value() if self.sasl_password else ""
            module = JAAS_LOGIN_MODULES[self.sasl_mechanism]
            opts["kafka.sasl.mechanism"] = self.sasl_mechanism
            opts["kafka.sasl.jaas.config"] = (
                f"{module} required username={jaas_quote(self.sasl_username or '')} "
                f"password={jaas_quote(secret)};"
            )
        if self.ssl_ca_location and self.security_protocol.endswith("SSL"):
            opts["kafka.ssl.truststore.type"] = "PEM"
            opts["kafka.ssl.truststore.location"] = self.ssl_ca_location
        return opts


# The Java client's login module per SASL mechanism (the JAAS option of spark_options)
JAAS_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def jaas_quote(value: str) -> str:
    """A JAAS option value in double quotes; Kafka's parser (a StreamTokenizer) unescapes
    backslashes, so a quote or backslash in a password survives."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MongoSettings(BaseSettings):
    """MONGO_*: the MongoDB-protocol server (local FerretDB, or MongoDB/Atlas)."""

    model_config = _group("MONGO_")

    uri: SecretStr = Field(SecretStr("mongodb://127.0.0.1:27017/"), description="MONGO_URI")
    database: str = Field("payments", description="MONGO_DATABASE")
    outcomes_collection: str = Field("order_outcomes", description="MONGO_OUTCOMES_COLLECTION")
    # orphan payments, keyed by payment_id: a key space apart from the outcomes' order_ids
    orphans_collection: str = Field("orphan_payments", description="MONGO_ORPHANS_COLLECTION")
    dead_letters_collection: str = Field(
        "dead_letters", description="MONGO_DEAD_LETTERS_COLLECTION"
    )
    batches_collection: str = Field("sink_batches", description="MONGO_BATCHES_COLLECTION")
    # payment_id -> the order_id that used it first (a payment pays one order only)
    claims_collection: str = Field("payment_claims", description="MONGO_CLAIMS_COLLECTION")
    # the live per-minute figures (contract/minutely.py) and the job's status (its last batch)
    minutely_collection: str = Field("metrics_minutely", description="MONGO_MINUTELY_COLLECTION")
    status_collection: str = Field("job_status", description="MONGO_STATUS_COLLECTION")
    # how long a call waits for a reachable server before it fails (then the sink retries)
    timeout_ms: int = Field(10_000, ge=100, description="MONGO_TIMEOUT_MS")


class TopicSettings(BaseSettings):
    """TOPIC_*: Kafka topic names and how they are created."""

    model_config = _group("TOPIC_")

    orders: str = Field("orders", description="TOPIC_ORDERS")
    payments: str = Field("payments", description="TOPIC_PAYMENTS")
    dead_letters: str = Field("payments.dead-letters", description="TOPIC_DEAD_LETTERS")
    outcomes: str = Field("order-outcomes", description="TOPIC_OUTCOMES")
    # PIPELINE_WRITE_TO=kafka: the orphan payments' documents (outcomes and dead letters go to
    # the topics above), and where the Connect sink puts the records MongoDB refused
    orphans: str = Field("orphan-payments", description="TOPIC_ORPHANS")
    connect_errors: str = Field("payments.connect-errors", description="TOPIC_CONNECT_ERRORS")
    partitions: int = Field(3, ge=1, description="TOPIC_PARTITIONS")
    retention_ms: int = Field(7 * 24 * 3600 * 1000, description="TOPIC_RETENTION_MS")


class SparkSettings(BaseSettings):
    """SPARK_*: the SparkSession and where the query keeps its checkpoint."""

    model_config = _group("SPARK_")

    master: str = Field("local[2]", description="SPARK_MASTER")
    checkpoint_location: str = Field(
        str(REPO_ROOT / "checkpoints" / "reconcile"), description="SPARK_CHECKPOINT_LOCATION"
    )
    jars_dir: str = Field(str(STACK_DIR / "spark-jars"), description="SPARK_JARS_DIR")
    packages: str = Field(
        "", description="SPARK_PACKAGES (e.g. on Dataproc: the Maven coordinate of the connector)"
    )
    shuffle_partitions: int = Field(2, ge=1, description="SPARK_SHUFFLE_PARTITIONS")
    # Each task of a micro-batch costs its Python worker a set-up whatever it carries; a live
    # batch of a few hundred records spread over every Kafka partition of both topics paid it
    # six times on two cores. 0: half of Spark's default parallelism per topic, at least 1.
    parse_tasks: int = Field(
        0, ge=0, description="SPARK_PARSE_TASKS (tasks reading and parsing each topic per batch)"
    )
    state_store: Literal["rocksdb", "hdfs"] = Field("rocksdb", description="SPARK_STATE_STORE")
    driver_memory: str = Field("2g", description="SPARK_DRIVER_MEMORY")


class PipelineSettings(BaseSettings):
    """PIPELINE_*: the reconciliation's event-time rules and batching."""

    model_config = _group("PIPELINE_")

    # "tws": the default, one state entry per order on transformWithStateInPandas, so a batch
    # costs what it carries (streaming/shape_tws.py; needs the RocksDB state store). "state":
    # one pickled value per bucket on applyInPandasWithState, rewritten whole every batch
    # (streaming/shape_state.py). Both run the same pure step (streaming/step.py).
    shape: Literal["tws", "state"] = Field("tws", description="PIPELINE_SHAPE")
    allowed_lateness_s: int = Field(900, ge=0, description="PIPELINE_ALLOWED_LATENESS_S")
    window_after_s: int = Field(900, ge=0, description="PIPELINE_WINDOW_AFTER_S")
    skew_before_s: int = Field(120, ge=0, description="PIPELINE_SKEW_BEFORE_S")
    # how long (event time, after an order closes or a payment is orphaned) their ids are kept
    # to recognise later copies as duplicates; one small state entry per closed order
    dedup_horizon_s: int = Field(86_400, ge=0, description="PIPELINE_DEDUP_HORIZON_S")
    # order_ids are hashed into this many state groups; Python runs once per group per batch,
    # and a group is never split across tasks, so this caps the state step's parallelism: keep
    # it at least SPARK_SHUFFLE_PARTITIONS, and both at least the cluster's executor cores.
    # Fixed into a checkpoint when it is created (checked at start).
    state_buckets: int = Field(4, ge=1, description="PIPELINE_STATE_BUCKETS")
    starting_offsets: str = Field("earliest", description="PIPELINE_STARTING_OFFSETS")
    max_offsets_per_trigger: int | None = Field(
        200_000, ge=1, description="PIPELINE_MAX_OFFSETS_PER_TRIGGER"
    )
    fail_on_data_loss: bool = Field(True, description="PIPELINE_FAIL_ON_DATA_LOSS")
    # A value longer than this is a `too_large` dead letter (kept whole: keep it well under
    # MongoDB's 16 MB document limit). Kafka's own default limit is 1 MiB.
    max_message_bytes: int = Field(
        1_048_576, ge=1, le=8 * 1_048_576, description="PIPELINE_MAX_MESSAGE_BYTES"
    )
    # An event whose event time is further than this past its Kafka timestamp is a
    # `future_event_time` dead letter: accepted, it would move the watermark ahead and make the
    # events after it late. Keep it well below PIPELINE_ALLOWED_LATENESS_S.
    max_future_s: int = Field(300, ge=0, description="PIPELINE_MAX_FUTURE_S")
    trigger_interval_s: float = Field(0.0, ge=0, description="PIPELINE_TRIGGER_INTERVAL_S")
    publish_outcomes: bool = Field(
        False, description="PIPELINE_PUBLISH_OUTCOMES (to TOPIC_OUTCOMES)"
    )
    # Where the outcomes, orphans and dead letters go: "mongo" (the job writes them) or "kafka"
    # (the job publishes each document, as MongoDB Extended JSON keyed by its _id, to
    # TOPIC_OUTCOMES, TOPIC_ORPHANS and TOPIC_DEAD_LETTERS, and Kafka Connect's MongoDB sink
    # upserts them: conf/connect/mongo-sink.json). The per-minute figures, the job's status,
    # batch markers and payment claims are written by the job in both cases.
    write_to: Literal["mongo", "kafka"] = Field("mongo", description="PIPELINE_WRITE_TO")
    # Fault injection for the crash test: pause (so a test can kill -9 the process) in the middle
    # of writing this batch id, after touching the flag file. Unset in normal runs.
    fault_pause_at_batch: int | None = Field(None, description="PIPELINE_FAULT_PAUSE_AT_BATCH")
    fault_flag_file: str | None = Field(None, description="PIPELINE_FAULT_FLAG_FILE")
    fault_pause_s: float = Field(600.0, ge=0, description="PIPELINE_FAULT_PAUSE_S")
    publish_dead_letters: bool = Field(
        False, description="PIPELINE_PUBLISH_DEAD_LETTERS (to TOPIC_DEAD_LETTERS)"
    )
    # A MongoDB call that cannot reach the server waits MONGO_TIMEOUT_MS, then is retried after
    # sink_retry_base_s, doubling, up to sink_retries attempts in all: with the defaults an
    # outage of about a minute is absorbed inside the batch. A longer one fails the batch and
    # the query (exit 1); `python -m scripts.supervise` (or Dataproc's restartable jobs) starts
    # it again from the checkpoint.
    sink_retries: int = Field(5, ge=1, description="PIPELINE_SINK_RETRIES")
    sink_retry_base_s: float = Field(0.5, ge=0, description="PIPELINE_SINK_RETRY_BASE_S")

    @model_validator(mode="after")
    def _one_writer_per_topic(self) -> PipelineSettings:
        if self.write_to == "kafka" and (self.publish_outcomes or self.publish_dead_letters):
            raise ValueError(
                "PIPELINE_WRITE_TO=kafka publishes the documents to TOPIC_OUTCOMES and "
                "TOPIC_DEAD_LETTERS itself: unset PIPELINE_PUBLISH_OUTCOMES and "
                "PIPELINE_PUBLISH_DEAD_LETTERS"
            )
        return self

    def rules(self) -> Rules:
        """The event-time rules these settings describe."""
        return Rules.from_seconds(
            self.window_after_s, self.skew_before_s, self.allowed_lateness_s, self.dedup_horizon_s
        )


class StackSettings(BaseSettings):
    """STACK_*: the local services that scripts/stack.py starts."""

    model_config = _group("STACK_")

    kafka_port: int = Field(9092, description="STACK_KAFKA_PORT")
    kafka_controller_port: int = Field(9093, description="STACK_KAFKA_CONTROLLER_PORT")
    # A SASL_SSL listener on this port besides PLAINTEXT (PLAIN and SCRAM-SHA-512, a CA made at
    # `up`, scripts/kafka_auth.py), as Confluent Cloud runs Kafka; 0: none.
    kafka_sasl_port: int = Field(0, ge=0, le=65535, description="STACK_KAFKA_SASL_PORT")
    mongo_port: int = Field(27017, description="STACK_MONGO_PORT")
    dir: str = Field(str(STACK_DIR), description="STACK_DIR")
    start_timeout_s: float = Field(90.0, description="STACK_START_TIMEOUT_S")
    # SQLite pragmas for FerretDB's local data (comma-separated). With WAL, synchronous(normal)
    # skips the fsync per commit: a FerretDB crash loses nothing committed, an OS crash or power
    # loss may lose the last commits. Together with a larger WAL this doubles FerretDB's update
    # rate here (~650 -> ~1,180 upserts/s). Set "synchronous(full)" for power-loss durability.
    ferretdb_sqlite_pragmas: str = Field(
        "synchronous(normal),wal_autocheckpoint(20000)",
        description="STACK_FERRETDB_SQLITE_PRAGMAS",
    )
    # A Spark standalone cluster from the pyspark distribution (scripts/cluster.py), for running
    # the job with spark-submit as on Dataproc. 0: no cluster (the job runs in local mode).
    spark_workers: int = Field(0, ge=0, description="STACK_SPARK_WORKERS")
    spark_master_port: int = Field(7077, description="STACK_SPARK_MASTER_PORT")
    spark_master_webui_port: int = Field(8480, description="STACK_SPARK_MASTER_WEBUI_PORT")
    spark_worker_cores: int = Field(1, ge=1, description="STACK_SPARK_WORKER_CORES")
    spark_worker_memory: str = Field("2g", description="STACK_SPARK_WORKER_MEMORY")
    # Prometheus (Debian's package) scraping the job's metrics endpoint every 2 s
    # (scripts/prometheus.py); the targets are the host:port of `--metrics-port`, comma-separated.
    prometheus: bool = Field(False, description="STACK_PROMETHEUS")
    prometheus_port: int = Field(9090, description="STACK_PROMETHEUS_PORT")
    metrics_targets: str = Field("127.0.0.1:9108", description="STACK_METRICS_TARGETS")
    # A Cloud Storage emulator (fake-gcs-server, scripts/gcs.py) on 127.0.0.1, plain HTTP, its
    # objects in memory (`down` drops them); `up` creates the buckets the gs:// settings name.
    # Point the job at it with GCS_EMULATOR_HOST=http://127.0.0.1:<STACK_GCS_PORT>.
    gcs: bool = Field(False, description="STACK_GCS")
    gcs_port: int = Field(4443, ge=1, le=65535, description="STACK_GCS_PORT")
    # A Kafka Connect worker (distributed mode, Kafka's own jars, MongoDB's sink connector on its
    # plugin path: scripts/connect.py) with its REST API on this port; `up` creates the sink.
    connect: bool = Field(False, description="STACK_CONNECT")
    connect_port: int = Field(8083, ge=1, le=65535, description="STACK_CONNECT_PORT")


class ConnectSettings(BaseSettings):
    """CONNECT_*: the Kafka Connect cluster that runs the MongoDB sink (PIPELINE_WRITE_TO=kafka;
    conf/connect/mongo-sink.json, scripts/connect.py)."""

    model_config = _group("CONNECT_")

    # A Connect cluster of your own (its REST API's base URL); its workers must resolve
    # ${env:MONGO_URI} (an EnvVarConfigProvider named `env`). Unset: the local worker that
    # STACK_CONNECT=1 starts, http://127.0.0.1:<STACK_CONNECT_PORT>.
    url: str | None = Field(None, description="CONNECT_URL")
    connector: str = Field("payments-mongo-sink", description="CONNECT_CONNECTOR")
    # The local worker's group.id; its config, offset and status topics are named after it.
    group_id: str = Field("payments-connect", description="CONNECT_GROUP_ID")

    def base_url(self, local_port: int) -> str:
        """The REST API's base URL, no trailing slash."""
        return (self.url or f"http://127.0.0.1:{local_port}").rstrip("/")


class GcsSettings(BaseSettings):
    """GCS_*: Cloud Storage, for gs:// checkpoints (Spark's GCS connector) and the job's log
    upload (google-cloud-storage)."""

    model_config = SettingsConfigDict(
        env_prefix="GCS_", frozen=True, extra="ignore", populate_by_name=True
    )

    # An emulator's URL (http://127.0.0.1:4443); both the connector and the client then talk to
    # it, signed out. Empty: Google's service, signed in with Application Default Credentials.
    # Google's client libraries call it STORAGE_EMULATOR_HOST, which is read too.
    emulator_host: str = Field(
        "",
        validation_alias=AliasChoices("GCS_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"),
        description="GCS_EMULATOR_HOST (or STORAGE_EMULATOR_HOST)",
    )

    @property
    def emulator_url(self) -> str:
        """The emulator's base URL with its scheme (http:// when the setting has none), no
        trailing slash; empty when no emulator is set."""
        host = self.emulator_host.strip().rstrip("/")
        if host and "://" not in host:
            host = f"http://{host}"
        return host


class JobLogSettings(BaseSettings):
    """JOB_LOG_*: the job's log file, rotated by size, and its upload to Cloud Storage."""

    model_config = _group("JOB_LOG_")

    # Empty: no file (the log goes to stderr only, as always).
    file: str = Field(str(REPO_ROOT / "logs" / "streaming.log"), description="JOB_LOG_FILE")
    max_bytes: int = Field(10 * 1_048_576, ge=1024, description="JOB_LOG_MAX_BYTES")
    backups: int = Field(5, ge=1, description="JOB_LOG_BACKUPS")
    # Set: each file the rotation closes, and the current one at exit, is uploaded to
    # gs://<bucket>/<prefix>/<run>/<n>.log (streaming/log_upload.py).
    gcs_bucket: str = Field("", description="JOB_LOG_GCS_BUCKET")
    gcs_prefix: str = Field("logs/streaming", description="JOB_LOG_GCS_PREFIX")
    upload_timeout_s: float = Field(30.0, gt=0, description="JOB_LOG_UPLOAD_TIMEOUT_S")


class DashboardSettings(BaseSettings):
    """DASHBOARD_*: the Streamlit dashboard (scripts/dashboard)."""

    model_config = _group("DASHBOARD_")

    refresh_s: float = Field(5.0, ge=1, description="DASHBOARD_REFRESH_S")
    # the KPIs and charts cover this many minutes, up to the newest minute of figures
    window_min: int = Field(60, ge=1, le=7 * 24 * 60, description="DASHBOARD_WINDOW_MIN")
    address: str = Field("127.0.0.1", description="DASHBOARD_ADDRESS")
    port: int = Field(8501, ge=1, le=65535, description="DASHBOARD_PORT")
    # how long a read of Kafka's end offsets may take before the page falls back to the lag the
    # job recorded with its last batch
    kafka_timeout_s: float = Field(1.0, gt=0, description="DASHBOARD_KAFKA_TIMEOUT_S")
    # a job with no batch for longer than this shows as idle or stopped
    stale_s: float = Field(120.0, gt=0, description="DASHBOARD_STALE_S")
    dead_letters: int = Field(50, ge=1, le=1000, description="DASHBOARD_DEAD_LETTERS")


class SchemaRegistrySettings(BaseSettings):
    """SCHEMA_REGISTRY_*: the Confluent-compatible schema registry of PIPELINE_FORMAT=avro (local:
    Apicurio Registry, scripts/registry.py; or Confluent Cloud's, with an API key)."""

    model_config = _group("SCHEMA_REGISTRY_")

    # The registry's Confluent API base URL, path included (Apicurio: .../apis/ccompat/v7).
    # Unset: the local one, http://127.0.0.1:<STACK_SCHEMA_REGISTRY_PORT>/apis/ccompat/v7.
    url: str | None = Field(None, description="SCHEMA_REGISTRY_URL")
    username: str | None = Field(None, description="SCHEMA_REGISTRY_USERNAME (API key)")
    password: SecretStr | None = Field(None, description="SCHEMA_REGISTRY_PASSWORD (API secret)")
    # set on each subject the producers register in; BACKWARD: a new schema must read old data
    compatibility: Literal["BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FULL", "NONE"] = Field(
        "BACKWARD", description="SCHEMA_REGISTRY_COMPATIBILITY"
    )
    timeout_s: float = Field(10.0, gt=0, description="SCHEMA_REGISTRY_TIMEOUT_S")


class FormatSettings(BaseSettings):
    """PIPELINE_FORMAT and STACK_SCHEMA_REGISTRY*: the wire format of both topics, and the local
    schema registry `python -m scripts.stack up` starts. (Each field is named as its variable.)"""

    model_config = _group("")

    # json: the contract's JSON (contract/wire.py); avro: Confluent-framed Avro (magic byte 0,
    # a 4-byte schema id, the body), its schemas in the registry (contract/avro.py)
    pipeline_format: Literal["json", "avro"] = Field("json", description="PIPELINE_FORMAT")
    stack_schema_registry: bool = Field(False, description="STACK_SCHEMA_REGISTRY")
    stack_schema_registry_port: int = Field(
        8086, ge=1, le=65535, description="STACK_SCHEMA_REGISTRY_PORT"
    )
    stack_schema_registry_heap: str = Field("512m", description="STACK_SCHEMA_REGISTRY_HEAP")

    def local_registry_url(self) -> str:
        return f"http://127.0.0.1:{self.stack_schema_registry_port}/apis/ccompat/v7"


def registry_client_conf(registry: SchemaRegistrySettings, fmt: FormatSettings) -> dict[str, Any]:
    """confluent-kafka's SchemaRegistryClient settings; holds the secret, never log it."""
    conf: dict[str, Any] = {"url": registry.url or fmt.local_registry_url()}
    conf["timeout"] = registry.timeout_s
    if registry.username:
        secret = registry.password.get_secret_value() if registry.password else ""
        conf["basic.auth.user.info"] = f"{registry.username}:{secret}"
    return conf


class Settings(BaseSettings):
    """Everything, grouped. Build it once, in the entry point, with `load_settings()`."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    stack: StackSettings = Field(default_factory=StackSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    gcs: GcsSettings = Field(default_factory=GcsSettings)
    job_log: JobLogSettings = Field(default_factory=JobLogSettings)
    connect: ConnectSettings = Field(default_factory=ConnectSettings)
    registry: SchemaRegistrySettings = Field(default_factory=SchemaRegistrySettings)
    wire: FormatSettings = Field(default_factory=FormatSettings)

    @property
    def kafka_is_local(self) -> bool:
        """True when the broker is the one scripts/stack.py manages (either of its listeners)."""
        ports = [p for p in (self.stack.kafka_port, self.stack.kafka_sasl_port) if p]
        return self.kafka.bootstrap_servers in {
            f"{host}:{port}" for host in ("127.0.0.1", "localhost") for port in ports
        }

    @property
    def mongo_is_local(self) -> bool:
        uri = self.mongo.uri.get_secret_value()
        return any(
            uri.startswith(f"mongodb://{host}:{self.stack.mongo_port}")
            for host in ("127.0.0.1", "localhost")
        )


class SettingsError(ValueError):
    """A setting from the environment or `.env` is invalid. The message names each variable and
    what is wrong with it in one line; a secret's value is never shown."""


def _explain(group: type[BaseSettings], exc: ValidationError) -> str:
    prefix = str(group.model_config.get("env_prefix", ""))
    problems = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        if not field:  # a rule across settings: its message names them
            problems.append(str(err["msg"]).removeprefix("Value error, "))
            continue
        name = f"{prefix}{field}".upper()
        secret = "SecretStr" in str(group.model_fields[field].annotation) if field else False
        shown = "(hidden)" if secret else repr(err.get("input"))
        problems.append(f"{name}={shown}: {err['msg']}")
    return "; ".join(problems)


GROUPS: tuple[tuple[str, type[BaseSettings]], ...] = (
    ("kafka", KafkaSettings), ("mongo", MongoSettings), ("topics", TopicSettings),
    ("spark", SparkSettings), ("pipeline", PipelineSettings), ("stack", StackSettings),
    ("dashboard", DashboardSettings), ("gcs", GcsSettings), ("job_log", JobLogSettings),
    ("connect", ConnectSettings), ("registry", SchemaRegistrySettings), ("wire", FormatSettings),
)  # fmt: skip


def load_settings(env_file: str | Path | None = None, **overrides: object) -> Settings:
    """Read `.env` (without overriding the real environment), then build the settings.

    `overrides` replace whole groups, e.g. `load_settings(topics=TopicSettings(orders="x"))`.
    Raises SettingsError (one line, naming the variables) for invalid values.
    """
    load_dotenv(env_file or REPO_ROOT / ".env", override=False)
    groups: dict[str, Any] = {}
    for name, group in GROUPS:
        try:
            groups[name] = group()
        except ValidationError as exc:
            raise SettingsError(_explain(group, exc)) from None
    return Settings(**groups).model_copy(update=overrides)
