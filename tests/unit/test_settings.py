"""Settings come from the environment and `.env`, the environment wins, secrets stay hidden."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conf.settings import REPO_ROOT, GcsSettings, load_settings

SECRET = "s3cr3t-Value"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No project settings in the environment during the test, and the environment as it was
    afterwards: `load_settings` copies a `.env` into os.environ (for child processes), which
    would otherwise leak a test's .env into every later test."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.split("_")[0] in {"KAFKA", "MONGO", "TOPIC", "SPARK", "PIPELINE", "STACK", "GCS",
                                 "JOB", "STORAGE"}:  # fmt: skip
            monkeypatch.delenv(key)
    yield monkeypatch
    os.environ.clear()
    os.environ.update(saved)


def test_env_file_then_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "KAFKA_BOOTSTRAP_SERVERS=broker.example:9092\nTOPIC_ORDERS=o-from-file\n"
        "PIPELINE_WINDOW_AFTER_S=600\nMONGO_DATABASE=from_file\n"
    )
    clean_env.setenv("MONGO_DATABASE", "from_env")
    s = load_settings(env)
    assert s.kafka.bootstrap_servers == "broker.example:9092"
    assert s.topics.orders == "o-from-file"
    assert s.pipeline.window_after_s == 600
    assert s.mongo.database == "from_env"  # the real environment wins over .env
    assert not s.kafka_is_local


def test_secrets_never_print(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    clean_env.setenv("KAFKA_SASL_USERNAME", "key")
    clean_env.setenv("KAFKA_SASL_PASSWORD", SECRET)
    clean_env.setenv("MONGO_URI", f"mongodb+srv://u:{SECRET}@cluster.example/")
    s = load_settings(tmp_path / "none.env")
    for text in (str(s), repr(s), str(s.kafka), repr(s.mongo), s.model_dump_json()):
        assert SECRET not in text
    assert "**" in str(s.kafka.sasl_password)
    # ...but the clients get them
    assert s.kafka.client_config()["sasl.password"] == SECRET
    assert SECRET in s.kafka.spark_options()["kafka.sasl.jaas.config"]
    assert not s.mongo_is_local


def test_settings_are_frozen(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    s = load_settings(tmp_path / "none.env")
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        s.topics.orders = "x"  # type: ignore[misc]


def test_env_example_lists_every_variable() -> None:
    from conf import settings as S

    text = (REPO_ROOT / ".env.example").read_text()
    for group in (
        S.KafkaSettings,
        S.MongoSettings,
        S.TopicSettings,
        S.SparkSettings,
        S.PipelineSettings,
        S.StackSettings,
        S.GcsSettings,
        S.JobLogSettings,
        S.ConnectSettings,
        S.SchemaRegistrySettings,
        S.FormatSettings,
    ):
        for name in group.model_fields:
            assert f"{group.model_config['env_prefix']}{name}".upper() in text, name


@pytest.mark.parametrize("name", ["GCS_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"])
def test_the_emulator_host_under_either_name(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    clean_env.setenv(name, "127.0.0.1:4443")
    s = load_settings(tmp_path / "none.env")
    assert s.gcs.emulator_url == "http://127.0.0.1:4443"
    # an override in code wins over the environment
    override = GcsSettings(emulator_host="")
    assert load_settings(tmp_path / "none.env", gcs=override).gcs.emulator_url == ""
