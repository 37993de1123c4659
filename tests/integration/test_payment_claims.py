"""The payment-id registry's pruning on the real MongoDB-protocol server: claims older than the
horizon go, newer ones stay, however many have expired (the soak found FerretDB refusing one
`delete_many` of more than SQLite's 32,766 variables, which failed the query)."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest

from conf.settings import Settings
from sinks.mongo_io import PRUNE_CHUNK, PaymentClaims
from tests.integration.helpers import isolated, mongo_db

pytestmark = pytest.mark.integration


def test_prune_deletes_every_expired_claim_in_chunks(
    settings: Settings, unique: Callable[[str], str], tmp_path
) -> None:
    s = isolated(settings, unique("claims"), str(tmp_path / "checkpoint"))
    claims = PaymentClaims(s)
    coll = mongo_db(s)[s.mongo.claims_collection]
    now = datetime.datetime.now(datetime.timezone.utc)
    old = now - datetime.timedelta(seconds=s.pipeline.dedup_horizon_s + 60)
    expired = 7 * PRUNE_CHUNK + 123  # past SQLite's 32,766 variables in one statement
    try:
        claims.ensure_indexes()
        coll.insert_many([{"_id": f"old-{i}", "order_id": "o", "claimed_at": old}
                          for i in range(expired)], ordered=False)  # fmt: skip
        coll.insert_many([{"_id": f"new-{i}", "order_id": "o", "claimed_at": now}
                          for i in range(50)], ordered=False)  # fmt: skip
        assert claims.prune() == expired
        assert sorted(d["_id"] for d in coll.find()) == sorted(f"new-{i}" for i in range(50))
        assert claims.prune() == 0
    finally:
        mongo_db(s).client.drop_database(s.mongo.database)
