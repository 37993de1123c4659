"""Scenario knobs shared by the tests: every kind of dirt turned on, often enough to show up in a
few hundred orders."""

DIRTY = dict(
    p_duplicate_order=0.1,
    p_duplicate_payment=0.1,
    p_payment_before_order=0.1,
    p_late=0.05,
    p_unpaid=0.1,
    p_wrong_amount=0.1,
    p_split=0.1,
    p_orphan=0.05,
    p_malformed=0.1,
)
