"""The MongoDB-vs-truth comparison the end-to-end tests rely on is not vacuous, and several
truth files (a scenario's and a fuzz run's) are checked as one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts.check_truth import differences

TRUTH: dict[str, Any] = {
    "orders": [
        {
            "order_id": "o1",
            "status": "PAID",
            "final": True,
            "amount": 5,
            "paid": 5,
            "payment_ids": ["p2", "p1"],
        }
    ],
    "orphans": [
        {"payment_id": "p9", "order_id": "x", "amount": 3, "final": True},
        {"payment_id": "p8", "order_id": "y", "amount": 3, "final": False},
    ],
    "dead_letters": [{"topic": "t", "key": None, "reason": "late", "value": "{}"}],
}
GOOD = [
    {
        "_id": "o1",
        "status": "PAID",
        "final": True,
        "amount": 5,
        "paid": 5,
        "payment_ids": ["p1", "p2"],
    },
    {"_id": "p9", "status": "ORPHAN_PAYMENT", "order_id": "x", "amount": 3},
]
DEAD = [{"topic": "t", "reason": "late", "raw_value": b"{}"}]


def test_equal_documents_have_no_differences() -> None:
    assert differences(TRUTH, GOOD, DEAD) == []


def test_each_kind_of_difference_is_reported() -> None:
    assert differences(TRUTH, [{**GOOD[0], "paid": 4}, GOOD[1]], DEAD)
    assert differences(TRUTH, [{**GOOD[0], "final": False}, GOOD[1]], DEAD)
    assert differences(TRUTH, [GOOD[0]], DEAD)  # orphan missing
    assert differences(TRUTH, [*GOOD, {**GOOD[0], "_id": "o2"}], DEAD)  # one too many
    assert differences(TRUTH, GOOD, [])  # dead letter missing
    assert differences(TRUTH, GOOD, DEAD + DEAD)  # dead letter twice
    assert differences(TRUTH, GOOD, [{**DEAD[0], "reason": "invalid_json"}])


def test_divergence_counts_each_kind_of_departure() -> None:
    from scripts.check_truth import divergence

    assert divergence(TRUTH, GOOD, DEAD) == {}
    got = divergence(
        TRUTH,
        [{**GOOD[0], "final": False}, {**GOOD[0], "_id": "o2"}],  # o1 not final; o2 extra
        [{**DEAD[0], "reason": "invalid_json"}],
    )
    assert got == {
        "order PAID final written as PAID": 1,
        "order not in truth": 1,
        "orphan missing": 1,
        "dead letter missing (late)": 1,
        "dead letter not in truth (invalid_json)": 1,
    }
    assert divergence(TRUTH, [{**GOOD[0], "paid": 4}, GOOD[1]], DEAD) == {
        "order amount/paid/payments differ": 1
    }
    assert divergence(TRUTH, [GOOD[1]], DEAD) == {"order missing (truth PAID final)": 1}


# A fuzz run's truth (producers/fuzz.py): dead letters only, one of them without a value.
FUZZ: dict[str, Any] = {
    "orders": [],
    "orphans": [],
    "dead_letters": [
        {"topic": "t", "key": "o1", "reason": "invalid_json", "value": None},
        {"topic": "t", "key": None, "reason": "late", "value": "{}"},
    ],
}
FUZZ_DEAD: list[dict[str, Any]] = [
    {"topic": "t", "reason": "invalid_json", "raw_value": None},
    {"topic": "t", "reason": "late", "raw_value": b"{}"},
]


def test_merged_truths_unite_orders_and_orphans_and_sum_dead_letters() -> None:
    from scripts.check_truth import merge

    merged = merge([TRUTH, FUZZ])
    assert (merged["orders"], merged["orphans"]) == (TRUTH["orders"], TRUTH["orphans"])
    assert len(merged["dead_letters"]) == 3
    assert differences(merged, GOOD, DEAD + FUZZ_DEAD) == []
    assert differences(merged, GOOD, DEAD + FUZZ_DEAD[:1])  # `late` is expected twice
    assert differences(merged, GOOD, FUZZ_DEAD)
    assert merge([TRUTH]) == {**TRUTH, "minutely": []}
    assert merge([TRUTH, TRUTH])["orders"] == TRUTH["orders"]  # the same order once


def test_truths_that_disagree_on_an_order_are_refused() -> None:
    from scripts.check_truth import merge

    other = {**TRUTH, "orders": [{**TRUTH["orders"][0], "paid": 4}]}
    with pytest.raises(ValueError, match="order o1"):
        merge([TRUTH, other])


def test_a_missing_dead_letter_without_a_value_is_reported() -> None:
    assert differences(FUZZ, [], FUZZ_DEAD[1:]) == [
        "dead letter missing: ('t', 'invalid_json') None"
    ]


T0 = 1_767_225_600_000
FIGURES = [[T0, "orders", "all", "EUR", 2, 700], [T0, "match", "all", "", 1, 0]]


def figure(minute: int, metric: str, dim: str, currency: str, *values: int) -> dict[str, Any]:
    from contract import minutely

    doc = dict(zip(minutely.VALUES[metric], values, strict=True))
    return {"_id": minutely.doc_id((minute, metric, dim, currency)), "metric": metric, **doc}


def test_per_minute_figures_are_compared_and_summed_across_truths() -> None:
    from scripts.check_truth import figure_differences, merge

    truth = {**TRUTH, "minutely": FIGURES}
    stored = [figure(*row) for row in FIGURES]  # type: ignore[arg-type]
    assert figure_differences(truth, stored) == []
    latency = {"_id": "x", "metric": "latency", "count": 4}  # by Kafka time: not compared
    assert figure_differences(truth, [*stored, latency]) == []
    assert figure_differences(truth, stored[:1]) == [
        f"figure {T0}|match|all|-: expected [1, 0] got None"
    ]
    wrong = figure(T0, "orders", "all", "EUR", 2, 699)
    assert len(figure_differences(truth, [wrong, stored[1]])) == 1
    assert merge([truth, truth])["minutely"][0] == [T0, "orders", "all", "EUR", 4, 1400]


def _write(path: Path, truth: dict[str, Any]) -> str:
    doc = {"format": "payments-truth/1", "scenario": {}, "rules": {}, "topics": {},
           "final_watermark_ms": None, **truth,
           "orders": [{**o, "currency": "EUR"} for o in truth["orders"]]}  # fmt: skip
    path.write_text(json.dumps(doc))
    return str(path)


def test_the_command_checks_several_files_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scripts import check_truth

    files = [_write(tmp_path / "truth.json", TRUTH), _write(tmp_path / "fuzz.json", FUZZ)]
    monkeypatch.setattr(check_truth, "load_settings", lambda: None)
    monkeypatch.setattr(check_truth, "fetch", lambda _s: (GOOD, DEAD + FUZZ_DEAD, []))
    assert check_truth.main(files) == 0
    assert "1 orders, 1 orphan payments, 3 dead letters" in capsys.readouterr().out
    assert check_truth.main(files[:1]) == 1  # the fuzz run's dead letters are unexpected


@pytest.mark.parametrize("problem", ["missing", "not_truth", "not_json", "no_orders", "no_file"])
def test_bad_files_end_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    from scripts.check_truth import main

    path = tmp_path / "t.json"
    if problem == "not_truth":
        path.write_text('{"format": "other"}')
    elif problem == "not_json":
        path.write_text("{")
    elif problem == "no_orders":
        _write(path, {**FUZZ, "orders": [{"order_id": "o1"}]})
    assert main([] if problem == "no_file" else [str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if problem != "no_file":
        assert len(err.strip().splitlines()) == 1 and ": error: " in err
