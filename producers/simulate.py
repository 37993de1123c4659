"""Produce both topics of a seeded scenario, in the scenario's global order.

    python -m producers.simulate [--seed N] [--count N] [--rate R] [--truth FILE] ...

`--truth FILE` writes the outcome the pipeline must end with (see `producers/truth.py`).
Flags: `--help`.
"""

from __future__ import annotations

from producers import cli, serde


def main(argv: list[str] | None = None) -> int:
    return cli.run(serde.KINDS, "python -m producers.simulate", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    raise SystemExit(main())
