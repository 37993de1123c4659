"""Compare what the pipeline wrote to MongoDB with a scenario's ground truth.

    python -m scripts.check_truth TRUTH.json [MORE.json ...]
                                  (exit 0 when equal, 1 with the differences, 2 for bad files)

Every order outcome (status, final, amount, paid, payment ids), every decided orphan payment and
every dead letter (topic, reason, raw value) must match, and nothing more may be there; so must
every event-time per-minute figure (contract/minutely.py). Several truth files (a scenario's and
a fuzz run's, `producers/fuzz.py`) are checked as one: their orders and orphans united, their
dead letters and figures summed.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any

from conf.settings import Settings, load_settings
from contract import minutely
from contract.integers import stored_int

OUTCOME_KEYS = ("status", "final", "amount", "paid", "payment_ids")
MONEY = ("amount", "paid")
# orders by order_id, decided orphans by payment_id, dead letters (topic, reason, raw value)
Summary = tuple[
    dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]], Counter[tuple[str, str, str | None]]
]


def as_text(raw: bytes | None) -> str | None:
    """A dead letter's raw bytes as the truth file writes them (undecodable bytes as lone
    surrogates, which JSON and Python round-trip)."""
    return None if raw is None else bytes(raw).decode("utf-8", "surrogateescape")


def merge(truths: list[dict[str, Any]]) -> dict[str, Any]:
    """Several truths (`Truth.to_json()`) as one: orders and orphans united (an id in two of
    them must have the same outcome in both), dead letters summed; the rest from the first."""
    out = {**truths[0], "orders": [], "orphans": [], "dead_letters": []}
    for part, key in (("orders", "order_id"), ("orphans", "payment_id")):
        seen: dict[str, dict[str, Any]] = {}
        for truth in truths:
            for item in truth[part]:
                first = seen.setdefault(item[key], item)
                if first != item:
                    raise ValueError(f"the truths disagree on {part[:-1]} {item[key]}")
        out[part] = list(seen.values())
    out["dead_letters"] = [d for truth in truths for d in truth["dead_letters"]]
    figures: minutely.Tally = {}
    for truth in truths:
        minutely.add_rows(figures, truth.get("minutely", []))
    out["minutely"] = minutely.to_rows(figures)
    return out


def figure_differences(
    truth: dict[str, Any], figure_docs: Iterable[dict[str, Any]], limit: int = 10
) -> list[str]:
    """The event-time figures of `truth` against metrics_minutely's documents. (The dead
    letters' and latency figures go by Kafka timestamps, which only the broker knows.)"""
    want = {minutely.doc_id(tuple(r[:4])): list(r[4:]) for r in truth.get("minutely", [])}  # type: ignore[arg-type]
    got = {
        d["_id"]: [stored_int(d[n]) for n in minutely.VALUES[d["metric"]]]
        for d in figure_docs
        if d.get("metric") in minutely.EVENT_TIME
    }
    out = [f"figure {k}: expected {want.get(k)} got {got.get(k)}"
           for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]  # fmt: skip
    return out[:limit] + ([f"... and {len(out) - limit} more"] if len(out) > limit else [])


def _value(d: dict[str, Any], key: str) -> Any:
    """A document's value as the truth spells it: integers as stored (contract.integers)."""
    if key == "payment_ids":
        return sorted(d[key])
    return stored_int(d[key]) if key in MONEY else d[key]


def _outcome(d: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(_value(d, k) for k in OUTCOME_KEYS)


def expected(
    truth: dict[str, Any],
) -> Summary:
    orders = {o["order_id"]: _outcome(o) for o in truth["orders"]}
    orphans = {
        o["payment_id"]: (o["order_id"], o["amount"]) for o in truth["orphans"] if o["final"]
    }
    dead = Counter((d["topic"], d["reason"], d["value"]) for d in truth["dead_letters"])
    return orders, orphans, dead


def actual(outcome_docs: Iterable[dict[str, Any]], dead_docs: Iterable[dict[str, Any]]) -> Summary:
    orders, orphans = {}, {}
    for d in outcome_docs:
        if d["status"] == "ORPHAN_PAYMENT":
            orphans[d["_id"]] = (d["order_id"], stored_int(d["amount"]))
        else:
            orders[d["_id"]] = _outcome(d)
    dead = Counter((d["topic"], d["reason"], as_text(d.get("raw_value"))) for d in dead_docs)
    return orders, orphans, dead


def differences(
    truth: dict[str, Any],
    outcome_docs: Iterable[dict[str, Any]],
    dead_docs: Iterable[dict[str, Any]],
    limit: int = 10,
) -> list[str]:
    """`truth` is `Truth.to_json()`; the docs are MongoDB's. Empty when they agree."""
    want, got = expected(truth), actual(outcome_docs, dead_docs)
    out: list[str] = []
    for label, w, g in (("order", want[0], got[0]), ("orphan", want[1], got[1])):
        for key in sorted(set(w) | set(g)):
            if w.get(key) != g.get(key):
                out.append(f"{label} {key}: expected {w.get(key)} got {g.get(key)}")
    missing, extra = want[2] - got[2], got[2] - want[2]
    out += [f"dead letter missing: {k[:2]} {_short(k[2])}" for k in missing]
    out += [f"dead letter unexpected: {k[:2]} {_short(k[2])}" for k in extra]
    if len(out) > limit:
        out = out[:limit] + [f"... and {len(out) - limit} more"]
    return out


def _short(value: str | None) -> str:
    return repr(value if value is None else value[:80])  # None: a message without a value


def _label(outcome: tuple[Any, ...]) -> str:
    return f"{outcome[0]}{' final' if outcome[1] else ''}"


def divergence(
    truth: dict[str, Any],
    outcome_docs: Iterable[dict[str, Any]],
    dead_docs: Iterable[dict[str, Any]],
) -> Counter[str]:
    """How MongoDB departs from the truth, counted by kind of departure (empty when equal).
    For comparing pipeline shapes: which semantics one keeps and which it loses, and how often."""
    (w_orders, w_orphans, w_dead), (g_orders, g_orphans, g_dead) = (
        expected(truth),
        actual(outcome_docs, dead_docs),
    )
    out: Counter[str] = Counter()
    for oid in set(w_orders) | set(g_orders):
        w, g = w_orders.get(oid), g_orders.get(oid)
        if w == g:
            continue
        if g is None:
            out[f"order missing (truth {_label(w)})"] += 1  # type: ignore[arg-type]
        elif w is None:
            out["order not in truth"] += 1
        elif w[2:] != g[2:]:
            out["order amount/paid/payments differ"] += 1
        else:
            out[f"order {_label(w)} written as {_label(g)}"] += 1
    for pid in set(w_orphans) | set(g_orphans):
        if w_orphans.get(pid) != g_orphans.get(pid):
            out["orphan missing" if pid not in g_orphans else "orphan not in truth"] += 1
    for key, n in (w_dead - g_dead).items():
        out[f"dead letter missing ({key[1].split(':')[0]})"] += n
    for key, n in (g_dead - w_dead).items():
        out[f"dead letter not in truth ({key[1].split(':')[0]})"] += n
    return out


Docs = list[dict[str, Any]]


def fetch(settings: Settings) -> tuple[Docs, Docs, Docs]:
    """Outcomes and orphans, dead letters, per-minute figures."""
    from pymongo import MongoClient

    m = settings.mongo
    with MongoClient(m.uri.get_secret_value(), serverSelectionTimeoutMS=10_000) as client:
        db = client[m.database]
        outcomes = [*db[m.outcomes_collection].find(), *db[m.orphans_collection].find()]
        dead = list(db[m.dead_letters_collection].find())
        return outcomes, dead, list(db[m.minutely_collection].find())


def main(argv: list[str] | None = None) -> int:
    from producers.truth import read_truth

    args = sys.argv[1:] if argv is None else argv
    if not args or any(a.startswith("-") for a in args):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        truth = merge([read_truth(path).to_json() for path in args])
    except (OSError, ValueError, KeyError, TypeError) as exc:  # not a truth file
        print(f"python -m scripts.check_truth: error: {exc}", file=sys.stderr)
        return 2
    outcomes, dead, figures = fetch(load_settings())
    diffs = differences(truth, outcomes, dead) + figure_differences(truth, figures)
    n_orders, n_orphans = len(truth["orders"]), sum(o["final"] for o in truth["orphans"])
    if diffs:
        print("MongoDB differs from the ground truth:\n  " + "\n  ".join(diffs))
        return 1
    print(
        f"MongoDB equals the ground truth: {n_orders} orders, {n_orphans} orphan payments, "
        f"{len(truth['dead_letters'])} dead letters, {len(truth['minutely'])} per-minute figures"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
