"""spark-submit entry point: `spark-submit [--packages ...] streaming/main.py [--available-now]`.

spark-submit runs this file as a script, so the checkout root is put on sys.path first (on
Dataproc, ship the packages with `--py-files` instead; see README).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streaming.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
