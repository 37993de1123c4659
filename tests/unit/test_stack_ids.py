"""The local stack's KRaft cluster id: Kafka's storage tool takes an id starting with "-" for an
option and fails (seen in CI: 1 fresh stack in 64), so such ids are drawn again."""

from __future__ import annotations

import base64
import uuid

import pytest

from scripts import stack


def test_an_id_starting_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    dashed = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))  # 0b111110.. -> "-" in URL-safe base64
    plain = uuid.UUID(bytes=bytes(range(16)))
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    draws = iter([dashed, dashed, plain])
    monkeypatch.setattr(stack.uuid, "uuid4", lambda: next(draws))
    cluster_id = stack.kafka_cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).rstrip(b"=").decode()
    assert len(cluster_id) == 22


def test_ids_are_random_and_never_start_with_a_dash() -> None:
    ids = {stack.kafka_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert not [i for i in ids if i.startswith("-")]
