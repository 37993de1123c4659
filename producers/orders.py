"""Produce the orders topic of a seeded scenario.

    python -m producers.orders [--seed N] [--count N] [--rate R] ...

Sends only the orders-topic emissions; `python -m producers.payments` with the same flags sends
the matching payments, so two terminals produce joinable streams. Flags: `--help`.
"""

from __future__ import annotations

from producers import cli, serde


def main(argv: list[str] | None = None) -> int:
    return cli.run((serde.ORDERS,), "python -m producers.orders", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
