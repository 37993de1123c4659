"""The Streamlit page: `python -m scripts.dashboard` (or `streamlit run scripts/dashboard/app.py`).

It reads only through `queries.Reader` and formats only through `view`. Whatever comes from the
database or the user is shown as plain text (`st.text`, `st.code`, `st.dataframe`, metric values),
never as Markdown or HTML. The live parts are fragments that re-run every DASHBOARD_REFRESH_S.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script by `streamlit run`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pandas as pd
import streamlit as st
from pymongo.errors import PyMongoError

from conf.settings import DashboardSettings, Settings, load_settings
from contract.events import Reason
from scripts.dashboard import text, view
from scripts.dashboard.queries import Reader, Snapshot

ALL = "all reasons"


@st.cache_resource
def _reader() -> Reader:
    """One reader (one MongoDB client, one Kafka consumer) per Streamlit server process."""
    settings = load_settings()
    return Reader(settings, settings.dashboard)


@st.cache_data(ttl=600, show_spinner=False)
def _server() -> str:
    return _reader().server()


def _cards(cards: list[text.Card], per_row: int) -> None:
    for start in range(0, len(cards), per_row):
        for col, card in zip(st.columns(per_row), cards[start : start + per_row], strict=False):
            col.metric(card.label, card.value, help=card.help or None, border=True)


def _header(settings: Settings, dash: DashboardSettings, snap: Snapshot) -> None:
    state = view.job_state(snap.status, datetime.now(timezone.utc), dash.stale_s)
    with st.container(key="job"):
        st.text(f"Database {settings.mongo.database} on {_server()}")
        (st.success if state.running else st.warning)(state.headline)
        if state.detail:
            st.text(state.detail)


def _kpis(dash: DashboardSettings, snap: Snapshot) -> None:
    k = view.kpis(snap.figures, snap.ends, dash.window_min, snap.status, snap.latest)
    if not snap.figures:
        st.info("No per-minute figures in this database yet: start the job, or wait a batch.")
    with st.container(key="kpis"):
        _cards(view.cards(k), per_row=4)
    if snap.status and snap.latest is None:
        st.warning("Kafka did not answer: the lag is the one the job recorded with its last batch.")
    ends = ", ".join(f"{clock} up to {text.utc(end)}" for clock, end in snap.ends.items() if end)
    st.caption(
        f"The last {dash.window_min} min of figures ({ends or 'none yet'}). "
        f"Read in {snap.mongo_s * 1000:,.0f} ms from MongoDB and {snap.kafka_s * 1000:,.0f} ms "
        f"from Kafka; refreshed every {dash.refresh_s:g} s."
    )


def _charts(snap: Snapshot) -> None:
    revenue, outcomes = view.revenue_frame(snap.figures), view.outcomes_frame(snap.figures)
    reasons = view.reasons_frame(snap.figures)
    left, middle, right = st.columns(3)
    with left:
        st.subheader("Revenue per minute")
        st.caption("Ordered and paid, by event time")
        _chart(revenue, lambda: st.line_chart(revenue, y_label="amount"))
    with middle:
        st.subheader("Outcomes by status")
        st.caption("Orders closed per minute, by the minute their window closed")
        _chart(outcomes, lambda: st.bar_chart(outcomes, y_label="orders", stack=True))
    with right:
        st.subheader("Dead letters by reason")
        st.caption("In the window, by Kafka timestamp")
        _chart(
            reasons,
            lambda: st.bar_chart(reasons, x="reason", y="count", horizontal=True, sort="-count"),
        )


def _chart(frame: pd.DataFrame, draw: Callable[[], object]) -> None:
    if frame.empty:
        st.text("no figures in the window")
    else:
        draw()


def _lookup(settings: Settings) -> None:
    st.subheader("Order lookup")
    order_id = st.text_input("order_id", key="order_id", max_chars=256, placeholder="o-42-17")
    order_id = (order_id or "").strip()
    if not order_id:
        return
    outcome, orphans = _reader().order(order_id)
    with st.container(key="lookup"):
        if outcome is None and not orphans:
            st.text(f"No order with this order_id in {settings.mongo.database}:")
            st.code(order_id, language=None)
            return
        if outcome is not None:
            _cards(text.order_cards(outcome), per_row=4)
            st.text("Timing")
            st.code(text.order_timing(outcome), language=None)
            st.text("Payments")
            st.code(text.payment_lines(outcome.get("payments") or [], outcome.get("currency")),
                    language=None)  # fmt: skip
        if orphans:
            st.text("Payments with this order_id that no order claimed (orphan payments)")
            st.code(text.payment_lines(orphans), language=None)


def _dead_letters(dash: DashboardSettings) -> None:
    st.subheader("Dead letters")
    reasons = [ALL, *sorted({r.value for r in Reason})]
    reason = st.selectbox("Reason", reasons, key="dead_letter_reason")
    docs = _reader().dead_letters(None if reason == ALL else reason, dash.dead_letters)
    rows = text.dead_letter_rows(docs)
    if not rows:
        st.text("none")
        return
    st.caption(f"The newest {len(rows)}, newest first; values cut at 120 characters.")
    st.dataframe(rows, hide_index=True)
    where = st.selectbox("Value of", [r["where"] for r in rows], key="dead_letter_where")
    doc = next(d for d in docs if str(d.get("_id")) == where)
    st.text(f"{doc.get('reason')}  key: {text.cut(doc.get('key'), 200)}")
    st.code(text.cut(doc.get("preview"), 4000) or "(no value)", language=None, wrap_lines=True)


@contextmanager
def _answering() -> Iterator[None]:
    """A MongoDB error is shown in place of the part (it re-runs at the next refresh); its name
    only: a message may name hosts, and the URI holds the password."""
    try:
        yield
    except PyMongoError as exc:
        st.error(f"MongoDB did not answer ({type(exc).__name__}); retrying at the next refresh.")


def main() -> None:
    st.set_page_config(page_title="Payments pipeline", layout="wide")
    settings = load_settings()
    dash = settings.dashboard
    st.title("Retail payments pipeline")

    @st.fragment(run_every=dash.refresh_s)
    def live() -> None:
        with _answering():
            snap = _reader().snapshot()
            _header(settings, dash, snap)
            _kpis(dash, snap)
            _charts(snap)

    @st.fragment
    def lookup() -> None:
        with _answering():
            _lookup(settings)

    @st.fragment(run_every=dash.refresh_s)
    def dead_letters() -> None:
        with _answering():
            _dead_letters(dash)

    live()
    lookup()
    dead_letters()


main()
