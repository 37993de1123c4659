"""The foreachBatch writer of the join shape (streaming/join_shape.py): reads the stored
documents of the orders a batch touches, merges the join's rows into them (pure:
`merge_rows`), and writes the result like the default sink (inserts, upserts, batch marker)."""

from __future__ import annotations

import functools
from typing import Any

from sinks.documents import Row
from sinks.mongo_io import MongoSink, retry
from streaming.join_shape import COLUMNS, LONE_ORDER, PAIR, merge_rows, to_json

READ_CHUNK = 500  # _ids per find


def _find_all(coll: Any, query: dict[str, Any], fields: dict[str, int]) -> list[dict[str, Any]]:
    return list(coll.find(query, fields))


class JoinSink(MongoSink):
    def stored(self, order_ids: list[str]) -> dict[str, dict[str, Any]]:
        coll = self.collection(self.settings.mongo.outcomes_collection)
        found: dict[str, dict[str, Any]] = {}
        fields = {"order_ts": 1, "amount": 1, "currency": 1, "payments": 1, "final": 1}

        for i in range(0, len(order_ids), READ_CHUNK):
            query = {"_id": {"$in": order_ids[i : i + READ_CHUNK]}}
            docs = retry(functools.partial(_find_all, coll, query, fields), "find stored")
            found.update({d["_id"]: d for d in docs})
        return found

    def rows_of(self, pdf: Any) -> list[Row]:
        records = pdf[list(COLUMNS)].to_dict("records")
        touched = sorted({r["o_order_id"] for r in records if r["kind"] in (PAIR, LONE_ORDER)})
        outputs = merge_rows(records, self.stored(touched) if touched else {})
        return [Row(o.kind, o.doc_id, to_json(o.doc), o.raw, o.kafka_ts) for o in outputs]
