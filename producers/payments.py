"""Produce the payments topic of a seeded scenario.

    python -m producers.payments [--seed N] [--count N] [--rate R] ...

Sends only the payments-topic emissions; `python -m producers.orders` with the same flags sends
the matching orders. Flags: `--help`.
"""

from __future__ import annotations

from producers import cli, serde


def main(argv: list[str] | None = None) -> int:
    return cli.run((serde.PAYMENTS,), "python -m producers.payments", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
