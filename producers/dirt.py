"""Kinds of dirt a scenario puts in its streams, and how a malformed message is made. Pure.

A malformed message has exactly one defect, so its dead-letter reason (the first failing check
of `serde.validate`) is known when it is made: `corrupt` returns both.
"""

from __future__ import annotations

import random
from enum import Enum
from typing import Any

from contract.events import FIELD_TYPES, F, Reason, reason
from producers import serde


class Dirt(str, Enum):
    CLEAN = "clean"
    DUPLICATE = "duplicate"
    PAYMENT_BEFORE_ORDER = "payment_before_order"
    LATE = "late"
    UNPAID = "unpaid"
    WRONG_AMOUNT = "wrong_amount"
    SPLIT = "split"
    ORPHAN = "orphan"
    # malformed kinds
    BAD_JSON = "bad_json"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NEGATIVE_AMOUNT = "negative_amount"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"


MALFORMED: tuple[Dirt, ...] = (
    Dirt.BAD_JSON,
    Dirt.MISSING_FIELD,
    Dirt.WRONG_TYPE,
    Dirt.NEGATIVE_AMOUNT,
    Dirt.UNKNOWN_SCHEMA_VERSION,
)


def _wrong(kind: str, value: Any) -> Any:
    """A value of the wrong JSON type for a field of type `kind`."""
    if kind == "string":
        return 12345
    if kind == "long":
        return str(value)
    if kind == "timestamp":
        return serde.parse_iso(value)  # epoch ms as a JSON number, not an ISO string
    return "3 items"  # items: a string, not an array


def corrupt(kind: str, base: dict[str, Any], dirt: Dirt, rng: random.Random) -> tuple[bytes, str]:
    """A valid message dict (`serde.order_dict`/`payment_dict`) -> (defective payload, reason)."""
    msg = dict(base)
    fields = serde.FIELDS[kind]
    if dirt is Dirt.BAD_JSON:
        text = serde.dumps(msg)
        if rng.random() < 0.5:
            return text[: -rng.randint(1, 12)], reason(Reason.INVALID_JSON)
        return serde.dumps(list(msg.values())), reason(Reason.NOT_AN_OBJECT)
    if dirt is Dirt.MISSING_FIELD:
        name = rng.choice(fields)
        del msg[name]
        return serde.dumps(msg), reason(Reason.MISSING_FIELD, name)
    if dirt is Dirt.WRONG_TYPE:
        name = rng.choice(fields)
        msg[name] = _wrong(FIELD_TYPES[name], msg[name])
        return serde.dumps(msg), reason(Reason.WRONG_TYPE, name)
    if dirt is Dirt.NEGATIVE_AMOUNT:
        msg[F.AMOUNT] = -max(1, msg[F.AMOUNT])
        return serde.dumps(msg), reason(Reason.NEGATIVE_AMOUNT)
    if dirt is Dirt.UNKNOWN_SCHEMA_VERSION:
        msg[F.SCHEMA_VERSION] = 2
        return serde.dumps(msg), reason(Reason.UNKNOWN_SCHEMA_VERSION)
    raise ValueError(f"not a malformed kind: {dirt}")
