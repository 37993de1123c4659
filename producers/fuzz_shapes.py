"""The shapes of hostile input `producers/fuzz.py` sends, and the reason each must get. Pure.

A shape takes a valid order or payment (`Base`: its wire dict, key, and a seeded rng) and makes
one defect; it names the dead-letter reason from the defect it made, following the checks of
`contract/wire.py` in their documented order (the key first, then no value, then the size, then
UTF-8, then JSON, then the fields in contract order, then the key against the order_id). It never
asks the parser: tests hold the parser and the job to this independent expectation.

`SHAPES` maps each shape's name to its weight and its function. The two that make ~1 MB
messages are rare (1% each), so 10,000 messages stay a few hundred MB.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contract.events import FIELD_TYPES, ITEM_FIELDS, F, Reason, reason
from contract.wire import MAX_DEPTH
from producers import serde

INVALID_JSON = reason(Reason.INVALID_JSON)
INVALID_UTF8 = reason(Reason.INVALID_UTF8)
INVALID_UTF8_KEY = reason(Reason.INVALID_UTF8, "key")
KEY_MISMATCH = reason(Reason.KEY_MISMATCH)
TOO_LARGE = reason(Reason.TOO_LARGE)
MB_STRING = 1_000_000  # characters of a "1 MB string": over MAX_STRING, under the size limit
# levels of a value inside the message's object (one level more): past the contract's limit, from
# just past it to far past Python's recursion limit; and within it
NESTING_BEYOND = (MAX_DEPTH, 20_000)
NESTING_WITHIN = (2, MAX_DEPTH - 1)
# Byte sequences no UTF-8 decoder accepts: a stray continuation byte, a lead byte without its
# continuation, an overlong form, an encoded surrogate, a code point past U+10FFFF, a cut
# sequence, bytes that never occur in UTF-8 (0xF8-0xFF).
NOT_UTF8 = (b"\x80", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82",
            b"\xf8\x88\x80\x80\x80", b"\xfe", b"\xff")  # fmt: skip
# A placeholder string no base holds; its JSON text is swapped for raw text afterwards
MARK = "\u2603fuzz-mark\u2603"

Path = tuple[Any, ...]  # a field's place in the message: (name,) or (F.ITEMS, 0, item field)


@dataclass(frozen=True)
class Base:
    kind: str  # serde.ORDERS | serde.PAYMENTS
    msg: dict[str, Any]  # a valid message's wire dict (serde.order_dict / payment_dict)
    rng: random.Random
    other_id: str  # another fuzz order_id, for keys that do not match
    max_bytes: int  # PIPELINE_MAX_MESSAGE_BYTES: a longer value is too_large

    @property
    def key(self) -> bytes:
        return serde.key_of(self.msg[F.ORDER_ID])

    @property
    def fields(self) -> tuple[str, ...]:
        return serde.FIELDS[self.kind]

    def paths(self, *types: str) -> list[Path]:
        """The places holding a field of one of `types`, items' fields included (first item)."""
        out: list[Path] = [(f,) for f in self.fields if FIELD_TYPES[f] in types]
        if self.kind == serde.ORDERS and self.msg[F.ITEMS]:
            out += [(F.ITEMS, 0, f) for f in ITEM_FIELDS if FIELD_TYPES[f] in types]
        return out


Made = tuple[bytes | None, bytes | None, str]  # (key, value, expected reason)


def text(obj: Any) -> str:
    """Compact JSON, non-ASCII as itself (UTF-8 once encoded), keys in insertion order."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _get(msg: dict[str, Any], path: Path) -> Any:
    place: Any = msg
    for step in path:
        place = place[step]
    return place


def _set(msg: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    """A copy of `msg` with `value` at `path` (a new top-level name is added last)."""
    out: dict[str, Any] = json.loads(json.dumps(msg))
    _get(out, path[:-1])[path[-1]] = value
    return out


def raw_at(msg: dict[str, Any], path: Path, raw: str) -> bytes:
    """`msg` as JSON with the value at `path` written as the raw JSON text `raw`: what a JSON
    encoder would refuse or change (NaN, a 5,000-digit integer, `1e3`, 20,000 brackets)."""
    return text(_set(msg, path, MARK)).replace(text(MARK), raw, 1).encode()


def _named(kind: Reason, path: Path) -> str:
    return reason(kind, path[-1])  # an item's field is named by its own name


def _nested(rng: random.Random, depth: int) -> str:
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
    return opener * depth + "1" + closer * depth


def random_bytes(b: Base) -> Made:
    data = bytearray(b.rng.randbytes(b.rng.randint(0, 2048)))
    data.insert(b.rng.randint(0, len(data)), b.rng.randint(0xF8, 0xFF))  # never in UTF-8
    return b.key, bytes(data), INVALID_UTF8


def truncated_json(b: Base) -> Made:
    whole = text(b.msg)  # cut the text, not the bytes: still UTF-8, never a whole object
    return b.key, whole[: b.rng.randrange(len(whole))].encode(), INVALID_JSON


def invalid_utf8_in_string(b: Base) -> Made:
    path = b.rng.choice(b.paths("string"))
    value = text(_set(b.msg, path, _get(b.msg, path)[:8] + MARK)).encode()
    return b.key, value.replace(MARK.encode(), b.rng.choice(NOT_UTF8)), INVALID_UTF8


def bom(b: Base) -> Made:
    return b.key, b"\xef\xbb\xbf" + text(b.msg).encode(), INVALID_JSON  # RFC 8259 8.1: no BOM


def nan_infinity(b: Base) -> Made:
    path = b.rng.choice(b.paths("long", "string", "timestamp"))
    constant = b.rng.choice(("NaN", "Infinity", "-Infinity"))
    return b.key, raw_at(b.msg, path, constant), INVALID_JSON


def int_beyond_64_bits(b: Base) -> Made:
    path = b.rng.choice(b.paths("long"))
    r, big = b.rng, b.rng.randint(2**64, 2**512)
    # the edges, far beyond, and past the 4,300 digits Python converts (sys.int_max_str_digits)
    many = "9" * r.randint(4_301, 20_000)
    literal = r.choice((str(2**63), str(-(2**63) - 1), str(big), str(-big), many))
    return b.key, raw_at(b.msg, path, literal), _named(Reason.OUT_OF_RANGE, path)


def float_for_int(b: Base) -> Made:
    path = b.rng.choice(b.paths("long"))
    literal = b.rng.choice(("1.0", "0.0", "-0.0", "12.5", "1e3", "1E+2", "2.5e-3", "1e400"))
    return b.key, raw_at(b.msg, path, literal), _named(Reason.WRONG_TYPE, path)


def deep_nesting(b: Base) -> Made:
    """Deeper than the contract allows (MAX_DEPTH): in a contract field or in a name it lacks."""
    path = (b.rng.choice([*b.fields, "extra"]),)
    raw = _nested(b.rng, b.rng.randint(*NESTING_BEYOND))
    return b.key, raw_at(b.msg, path, raw), INVALID_JSON


def nested_value(b: Base) -> Made:
    path = (b.rng.choice(b.fields),)
    raw = _nested(b.rng, b.rng.randint(*NESTING_WITHIN))
    return b.key, raw_at(b.msg, path, raw), _named(Reason.WRONG_TYPE, path)


def _filler(rng: random.Random, n: int) -> str:
    chunk = "".join(rng.choices(string.ascii_letters + string.digits, k=64))
    return (chunk * (n // 64 + 1))[:n]


def string_1mb(b: Base) -> Made:
    path = b.rng.choice(b.paths("string"))
    value = text(_set(b.msg, path, _filler(b.rng, MB_STRING))).encode()
    return b.key, value, _named(Reason.INVALID_VALUE, path)


def too_large(b: Base) -> Made:
    """Just over `max_bytes`, or up to 4 KiB over: padding in a contract string field or in a
    name the contract lacks (the size is checked before either)."""
    name = b.rng.choice([*(p[0] for p in b.paths("string") if len(p) == 1), "padding"])
    skeleton = len(text({**b.msg, name: ""}).encode())
    n = b.max_bytes + 1 + b.rng.choice((0, b.rng.randint(1, 4096))) - skeleton
    return b.key, text({**b.msg, name: _filler(b.rng, n)}).encode(), TOO_LARGE


def duplicate_key(b: Base) -> Made:
    """A name given twice: the same value, another value, spelled with an escape, in an item."""
    r, msg = b.rng, b.msg
    name = r.choice(b.fields)
    whole = text(msg)
    how = r.choice(("same", "other", "escaped", "item"))
    if how == "item" and b.kind == serde.ORDERS and msg[F.ITEMS]:
        item = text(msg[F.ITEMS][0])
        field = r.choice(ITEM_FIELDS)
        twice = item[:-1] + f",{text(field)}:{text(msg[F.ITEMS][0][field])}}}"
        items = "[" + ",".join([twice, *(text(i) for i in msg[F.ITEMS][1:])]) + "]"
        return b.key, raw_at(msg, (F.ITEMS,), items), INVALID_JSON
    spelled = f'"\\u{ord(name[0]):04x}{name[1:]}"' if how == "escaped" else text(name)
    again = text(msg[name]) if how != "other" else text(r.choice((None, 0, "x", [])))
    return b.key, (whole[:-1] + f",{spelled}:{again}}}").encode(), INVALID_JSON


def all_null(b: Base) -> Made:
    value = text(dict.fromkeys(b.fields)).encode()  # present, so not missing: wrong type
    return b.key, value, reason(Reason.WRONG_TYPE, b.fields[0])


def one_null(b: Base) -> Made:
    path = b.rng.choice(b.paths("string", "long", "timestamp", "items"))
    return b.key, text(_set(b.msg, path, None)).encode(), _named(Reason.WRONG_TYPE, path)


def empty_string(b: Base) -> Made:
    path = b.rng.choice(b.paths("string"))
    return b.key, text(_set(b.msg, path, "")).encode(), _named(Reason.INVALID_VALUE, path)


def empty_object(b: Base) -> Made:
    return b.key, b"{}", reason(Reason.MISSING_FIELD, b.fields[0])


def empty_value(b: Base) -> Made:
    return b.key, b.rng.choice((b"", b" ", b"\r\n\t ")), INVALID_JSON


def null_value(b: Base) -> Made:
    return b.key, None, INVALID_JSON  # a tombstone


def key_other_id(b: Base) -> Made:
    oid = b.msg[F.ORDER_ID]
    key = b.rng.choice((b.other_id, oid + " ", oid.upper(), oid[:-1], "\u043e" + oid[1:]))
    return key.encode(), text(b.msg).encode(), KEY_MISMATCH  # "\u043e": a Cyrillic o


def key_null(b: Base) -> Made:
    return None, text(b.msg).encode(), KEY_MISMATCH


def key_empty(b: Base) -> Made:
    return b"", text(b.msg).encode(), KEY_MISMATCH


def key_not_utf8(b: Base) -> Made:
    """The key is checked first: whatever the value, even none."""
    key = b.key + b.rng.choice(NOT_UTF8)
    value = b.rng.choice((text(b.msg).encode(), None, b"", b"\xff{"))
    return key, value, INVALID_UTF8_KEY


Shape = Callable[[Base], Made]
BIG = 0.01  # the weight of each shape making a ~1 MB message
_SMALL: tuple[Shape, ...] = (random_bytes, truncated_json, invalid_utf8_in_string, bom,
    nan_infinity, int_beyond_64_bits, float_for_int, deep_nesting, nested_value, duplicate_key,
    all_null, one_null, empty_string, empty_object, empty_value, null_value, key_other_id,
    key_null, key_empty, key_not_utf8)  # fmt: skip
SHAPES: dict[str, tuple[float, Shape]] = {
    "string_1mb": (BIG, string_1mb),
    "too_large": (BIG, too_large),
    **{fn.__name__: ((1 - 2 * BIG) / len(_SMALL), fn) for fn in _SMALL},
}
