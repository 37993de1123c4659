"""The fuzz producer (producers/fuzz.py): every shape of hostile input in a 10,000-message run,
the same bytes for the same seed, sizes bounded, and the parser rejecting each message with
exactly the reason the generator named from the defect it made (here asking the parser is the
point: the generator never does)."""

from __future__ import annotations

import fnmatch
import random
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from contract import wire
from contract.rules import Rules
from producers import serde
from producers.fuzz import FuzzMessage, fuzz_truth, generate, message_max_bytes
from producers.fuzz_shapes import SHAPES
from producers.truth import read_truth, write_truth
from tests.unit.test_cli_errors import error_line, run_command

N = 10_000
MB = 1_048_576
# What each shape must become, stated apart from the generator (fnmatch patterns).
EXPECTED: dict[str, str] = {
    "random_bytes": "invalid_utf8",
    "truncated_json": "invalid_json",
    "invalid_utf8_in_string": "invalid_utf8",
    "bom": "invalid_json",
    "nan_infinity": "invalid_json",
    "int_beyond_64_bits": "out_of_range:*",
    "float_for_int": "wrong_type:*",
    "deep_nesting": "invalid_json",
    "nested_value": "wrong_type:*",
    "string_1mb": "invalid_value:*",
    "too_large": "too_large",
    "duplicate_key": "invalid_json",
    "all_null": "wrong_type:{first}",  # {first}: the first contract field of the message's kind
    "one_null": "wrong_type:*",
    "empty_string": "invalid_value:*",
    "empty_object": "missing_field:{first}",
    "empty_value": "invalid_json",
    "null_value": "invalid_json",
    "key_other_id": "key_mismatch",
    "key_null": "key_mismatch",
    "key_empty": "key_mismatch",
    "key_not_utf8": "invalid_utf8:key",
}
JOB_LIMITS = {"max_bytes": MB, "max_future_ms": 300_000}  # the job's defaults


@pytest.fixture(scope="module")
def run() -> list[FuzzMessage]:
    return generate(N, seed=1)


def _verdict(m: FuzzMessage, **limits: int) -> str | None:
    kind = serde.CONTRACT_KIND[m.kind]
    return wire.check(kind, m.key, m.value, kafka_ts=int(time.time() * 1000), **limits)


def test_every_shape_appears_on_both_topics(run: list[FuzzMessage]) -> None:
    assert set(EXPECTED) == set(SHAPES)
    seen = Counter((m.shape, m.kind) for m in run)
    assert {(s, k) for s in SHAPES for k in serde.KINDS} <= set(seen)
    assert len(run) == N


def test_any_run_of_at_least_one_per_shape_has_them_all() -> None:
    assert {m.shape for m in generate(len(SHAPES), seed=9)} == set(SHAPES)


def test_the_same_seed_gives_the_same_bytes() -> None:
    a, b = generate(200, seed=7), generate(200, seed=7)
    assert a == b
    assert [(m.key, m.value) for m in generate(200, seed=8)] != [(m.key, m.value) for m in a]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_parser_gives_each_message_the_generators_reason(
    run: list[FuzzMessage], shape: str
) -> None:
    mine = [m for m in run if m.shape == shape]
    assert mine
    wrong = [(m.reason, v, (m.value or b"")[:60]) for m in mine
             if (v := _verdict(m, **JOB_LIMITS)) != m.reason]  # fmt: skip
    assert wrong == []
    for m in mine:
        assert fnmatch.fnmatchcase(m.reason, EXPECTED[shape].format(first=serde.FIELDS[m.kind][0]))


def test_messages_with_a_bad_key_have_a_valid_value(run: list[FuzzMessage]) -> None:
    """The key is their only defect, and their ids are the fuzz run's own."""
    keyed = [m for m in run if m.shape in ("key_other_id", "key_null", "key_empty")]
    for m in keyed:
        assert m.value is not None
        fields = wire.parse(serde.CONTRACT_KIND[m.kind], None, m.value, check_key=False)
        assert fields["order_id"].startswith("o-fuzz-1-")


def test_ids_cannot_collide_with_a_scenarios(run: list[FuzzMessage]) -> None:
    keys = [m.key for m in run if m.shape not in ("key_other_id", "key_null", "key_empty")]
    assert all(k is not None and k.startswith(b"o-fuzz-1-") for k in keys)


def test_sizes_are_bounded(run: list[FuzzMessage]) -> None:
    size = {m: len(m.value or b"") for m in run}
    assert sum(size.values()) < 400 * MB
    for m, n in size.items():
        if m.shape == "too_large":
            assert MB < n <= MB + 4097
        elif m.shape == "string_1mb":
            assert 1_000_000 < n <= MB
        else:
            assert n <= 200_000, m.shape
    big = sum(m.shape in ("too_large", "string_1mb") for m in run)
    assert 0.01 * N < big < 0.03 * N
    assert message_max_bytes(run) > max(size.values())


def test_a_lower_size_limit_makes_anything_longer_too_large() -> None:
    limit = 8192
    messages = generate(300, seed=3, max_bytes=limit)
    for m in messages:
        assert _verdict(m, max_bytes=limit) == m.reason
    assert all(m.reason == "too_large" for m in messages if m.shape == "string_1mb")
    with pytest.raises(ValueError, match="max_bytes"):
        generate(1, seed=3, max_bytes=100)


def test_the_truth_holds_every_message_as_a_dead_letter(tmp_path: Path) -> None:
    messages = generate(60, seed=4)
    topics = {serde.ORDERS: "fz-orders", serde.PAYMENTS: "fz-payments"}
    path = tmp_path / "fuzz.json"
    write_truth(path, fuzz_truth(messages, topics, Rules(), seed=4))
    truth = read_truth(path)
    assert truth.orders == [] and truth.orphans == []
    assert len(truth.dead_letters) == len(messages)
    for d, m in zip(truth.dead_letters, messages, strict=True):
        assert (d.topic, d.reason) == (topics[m.kind], m.reason)
        assert (d.value is None) == (m.value is None)  # a tombstone stays one
        back = None if d.value is None else d.value.encode("utf-8", "surrogateescape")
        assert back == m.value
        assert (None if d.key is None else d.key.encode("utf-8", "surrogateescape")) == m.key


def _fuzz(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return run_command(args, module="producers.fuzz", **env)


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (["--count", "many"], {}, "--count"),
        (["--rate", "-1"], {}, "--rate"),
        (["--seed", "x"], {}, "--seed"),
        (["--bogus"], {}, "--bogus"),
        ([], {"FUZZ_COUNT": "lots"}, "FUZZ_COUNT"),
        ([], {"PIPELINE_MAX_MESSAGE_BYTES": "0"}, "PIPELINE_MAX_MESSAGE_BYTES"),
    ],
)
def test_bad_flag_or_setting(args: list[str], env: dict[str, str], names: str) -> None:
    done = _fuzz(args, **env)
    assert done.returncode == 2
    assert names in error_line(done)


def test_unreachable_broker(tmp_path: Path) -> None:
    truth = tmp_path / "fuzz.json"
    done = _fuzz(["--count", "30", "--truth", str(truth)], KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert done.returncode == 1
    assert "Kafka at 127.0.0.1:1" in error_line(done)
    assert len(read_truth(truth).dead_letters) == 30  # written before sending


def test_interleaving_keeps_each_sides_order() -> None:
    from producers.fuzz import interleave

    a, b = list(range(50)), [f"x{i}" for i in range(30)]
    mixed = interleave(random.Random(1), a, b)
    assert [x for x in mixed if isinstance(x, int)] == a
    assert [x for x in mixed if isinstance(x, str)] == b
    assert mixed[:50] != a  # mixed, not appended
    assert mixed == interleave(random.Random(1), a, b)
