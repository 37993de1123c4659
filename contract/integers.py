"""Integers as the job stores them: exact, whatever their size. Pure; imports nothing.

Every integer the job accepts or computes is a Python int from the parser to the sink (never a
float: see streaming/frames.py). What BSON cannot hold is kept as decimal digits (`storable`),
and read back by `stored_int`.
"""

from __future__ import annotations

from typing import Any

INT64 = (-(2**63), 2**63 - 1)  # what BSON (and Spark's LongType) can hold


def storable(value: Any) -> Any:
    """`value` with every integer outside INT64 replaced by its decimal digits (a string).

    Sums of accepted amounts are exact Python integers; BSON holds 64 bits. A sum beyond them
    (more than 1,024 maximal amounts in one order or one minute, contract.events.MAX_AMOUNT)
    is stored as text that keeps every digit, never wrapped or rounded; `stored_int` reads
    either form back. (Decimal128 would keep a number type, but FerretDB v1 has none.)"""
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return value if INT64[0] <= value <= INT64[1] else str(value)
    return value


def stored_int(value: object) -> int:
    """An integer as `storable` wrote it: a BSON integer, or the decimal digits of one that
    did not fit (ASCII only, an optional minus sign)."""
    if isinstance(value, str):
        digits = value[1:] if value.startswith("-") else value
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"not a stored integer: {value!r}")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a stored integer: {value!r}")
    return int(value)
