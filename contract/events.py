"""The event contract: orders and payments, and the one place their field names are spelled.

Pure Python (no Kafka, no Spark). Amounts are integers in minor units (cents); timestamps are
integers in epoch milliseconds here and ISO-8601 UTC strings with milliseconds on the wire
(see `producers/serde.py`). The streaming job builds its Spark schema and its validation from the
constants below (`streaming/source.py`), and the producers build their malformed messages from the
same reasons, so a dead letter's reason is the same word on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

SCHEMA_VERSION = 1
ORDER, PAYMENT = "order", "payment"  # the two event kinds (and their topics' roles)


class F:
    """Field names of the wire format. Nothing else in the project spells them."""

    ORDER_ID = "order_id"
    CUSTOMER_ID = "customer_id"
    STORE_ID = "store_id"
    CHANNEL = "channel"
    ITEMS = "items"
    PRODUCT_ID = "product_id"
    CATEGORY = "category"
    QUANTITY = "quantity"
    UNIT_PRICE = "unit_price"
    AMOUNT = "amount"
    CURRENCY = "currency"
    ORDER_TS = "order_ts"
    PRODUCED_AT = "produced_at"
    SCHEMA_VERSION = "schema_version"
    PAYMENT_ID = "payment_id"
    METHOD = "method"
    PAYMENT_TS = "payment_ts"


# Required top-level fields in the order validation checks them; the first failing check names
# the reason, so one defect gives exactly one reason.
ORDER_FIELDS: tuple[str, ...] = (
    F.ORDER_ID,
    F.CUSTOMER_ID,
    F.STORE_ID,
    F.CHANNEL,
    F.ITEMS,
    F.AMOUNT,
    F.CURRENCY,
    F.ORDER_TS,
    F.PRODUCED_AT,
    F.SCHEMA_VERSION,
)
ITEM_FIELDS: tuple[str, ...] = (F.PRODUCT_ID, F.CATEGORY, F.QUANTITY, F.UNIT_PRICE)
PAYMENT_FIELDS: tuple[str, ...] = (
    F.PAYMENT_ID,
    F.ORDER_ID,
    F.METHOD,
    F.AMOUNT,
    F.CURRENCY,
    F.PAYMENT_TS,
    F.PRODUCED_AT,
    F.SCHEMA_VERSION,
)

# JSON type of each field: "string", "long", "timestamp" (ISO-8601 string), "items" (array of
# objects with ITEM_FIELDS). The Spark schema is derived from this table.
FIELD_TYPES: dict[str, str] = {
    F.ORDER_ID: "string",
    F.CUSTOMER_ID: "string",
    F.STORE_ID: "string",
    F.CHANNEL: "string",
    F.ITEMS: "items",
    F.PRODUCT_ID: "string",
    F.CATEGORY: "string",
    F.QUANTITY: "long",
    F.UNIT_PRICE: "long",
    F.AMOUNT: "long",
    F.CURRENCY: "string",
    F.ORDER_TS: "timestamp",
    F.PRODUCED_AT: "timestamp",
    F.SCHEMA_VERSION: "long",
    F.PAYMENT_ID: "string",
    F.METHOD: "string",
    F.PAYMENT_TS: "timestamp",
}


# The largest accepted `amount`, in minor units: 2**53 - 1, the largest integer every JSON reader
# keeps exact (JavaScript's Number.MAX_SAFE_INTEGER): 90 trillion in a two-decimal currency, far
# above any retail payment (card networks carry 12 digits). Above it: `out_of_range:amount`.
# Sums of accepted amounts are exact Python integers; one that leaves BSON's int64 (more than
# 1,024 maximal amounts in one order or one minute) is stored as its decimal digits
# (contract/integers.py `storable`), never wrapped or rounded.
MAX_AMOUNT = 2**53 - 1


class Reason(str, Enum):
    """Why a message became a dead letter (the checks are in contract/wire.py). A reason about
    one field carries its name after a colon, e.g. `missing_field:amount` (see `reason()`)."""

    INVALID_UTF8 = "invalid_utf8"  # `invalid_utf8:key` when it is the key
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    TOO_LARGE = "too_large"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    NEGATIVE_AMOUNT = "negative_amount"
    KEY_MISMATCH = "key_mismatch"
    FUTURE_EVENT_TIME = "future_event_time"
    LATE = "late"
    # a payment_id already used for another order: a payment pays one order (the first wins)
    PAYMENT_ID_REUSED = "payment_id_reused"
    # PIPELINE_FORMAT=avro (contract/avro.py): not a Confluent frame (no value, shorter than 5
    # bytes, or a first byte other than 0); a schema id the registry does not know; a body the
    # writer's schema cannot decode
    INVALID_FRAME = "invalid_frame"
    UNKNOWN_SCHEMA_ID = "unknown_schema_id"
    INVALID_AVRO = "invalid_avro"
    # decided by the sink: the database refused the document for a reason retrying cannot fix
    UNSTORABLE_DOCUMENT = "unstorable_document"


def reason(kind: Reason, field: str | None = None) -> str:
    """The reason string stored with a dead letter."""
    return f"{kind.value}:{field}" if field else kind.value


class Channel(str, Enum):
    WEB = "web"
    APP = "app"
    STORE = "store"


class Method(str, Enum):
    CARD = "card"
    WALLET = "wallet"
    BANK_TRANSFER = "bank_transfer"
    GIFT_CARD = "gift_card"


# A currency is an ISO 4217 alphabetic code: three ASCII capital letters, written with an
# explicit ASCII class (a message's text is Unicode: case folding or `str.isalpha` would take
# letters such as the Kelvin sign or full-width capitals). Outside it: `invalid_value:currency`.
CURRENCY_PATTERN = "[A-Z]{3}"


@dataclass(frozen=True, slots=True)
class Item:
    product_id: str
    category: str
    quantity: int
    unit_price: int  # minor units


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    customer_id: str
    store_id: str
    channel: str
    items: tuple[Item, ...]
    amount: int  # minor units, the sum of quantity * unit_price
    currency: str
    order_ts: int  # epoch ms, event time
    produced_at: int  # epoch ms, when the source system emitted it
    schema_version: int = SCHEMA_VERSION

    @property
    def key(self) -> str:
        return self.order_id

    @property
    def event_ts(self) -> int:
        return self.order_ts


@dataclass(frozen=True, slots=True)
class Payment:
    payment_id: str
    order_id: str
    method: str
    amount: int  # minor units
    currency: str
    payment_ts: int  # epoch ms, event time
    produced_at: int  # epoch ms
    schema_version: int = SCHEMA_VERSION

    @property
    def key(self) -> str:
        return self.order_id

    @property
    def event_ts(self) -> int:
        return self.payment_ts


Event = Order | Payment
