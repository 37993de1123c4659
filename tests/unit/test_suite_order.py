"""The suite's schedule (tests/conftest.py): the modules it hands out first exist."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LONGEST_FIRST


def test_every_module_handed_out_first_exists() -> None:
    integration = Path(__file__).parents[1] / "integration"
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
    assert [n for n in LONGEST_FIRST if not (integration / n).is_file()] == []
