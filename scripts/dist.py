"""Zip the job's packages for `spark-submit --py-files`: dist/payments-pipeline.zip.

    python -m scripts.dist

The packages are the ones pyproject.toml's [tool.setuptools.packages.find] `include` names,
less `scripts*` (tooling the executors never import), found the way setuptools finds them. The
zip's entries are sorted and dated 1980, so the same sources give the same bytes.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import zipfile
from pathlib import Path

from conf.settings import REPO_ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

DIST_ZIP = REPO_ROOT / "dist" / "payments-pipeline.zip"
EXCLUDE = ("scripts*",)


def include_patterns(root: Path = REPO_ROOT) -> list[str]:
    data = tomllib.loads((root / "pyproject.toml").read_text())
    patterns: list[str] = data["tool"]["setuptools"]["packages"]["find"]["include"]
    return patterns


def packages(root: Path = REPO_ROOT) -> list[str]:
    """Dotted names of the packages to ship: directories with an __init__.py under `root`
    matching an include pattern and no exclude pattern (setuptools' `find` semantics)."""
    include = include_patterns(root)
    found = []
    todo = [(d, d.name) for d in root.iterdir() if (d / "__init__.py").is_file()]
    while todo:
        path, name = todo.pop()
        subs = [d for d in path.iterdir() if (d / "__init__.py").is_file()]
        todo.extend((d, f"{name}.{d.name}") for d in subs)
        matches = any(fnmatch.fnmatchcase(name, p) for p in include)
        if matches and not any(fnmatch.fnmatchcase(name, p) for p in EXCLUDE):
            found.append(name)
    return sorted(found)


def sources(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Zip entry name -> source file, for every module of the shipped packages."""
    entries = {}
    for package in packages(root):
        folder = root.joinpath(*package.split("."))
        for f in folder.glob("*.py"):
            entries[f.relative_to(root).as_posix()] = f
    return dict(sorted(entries.items()))


def is_stale(zip_path: Path = DIST_ZIP, root: Path = REPO_ROOT) -> bool:
    """Missing, older than a source, or holding other modules than the sources now are (a
    renamed or deleted module must not linger in it)."""
    if not zip_path.exists():
        return True
    entries = sources(root)
    with zipfile.ZipFile(zip_path) as z:
        if set(z.namelist()) != set(entries):
            return True
    built = zip_path.stat().st_mtime
    return any(f.stat().st_mtime > built for f in entries.values())


def build(zip_path: Path = DIST_ZIP, root: Path = REPO_ROOT) -> Path:
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as z:
        for name, f in sources(root).items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, f.read_bytes())
    # a spark-submit reading the old zip never sees half of the new one
    os.replace(partial, zip_path)
    return zip_path


def ensure_built(zip_path: Path = DIST_ZIP, root: Path = REPO_ROOT) -> Path:
    return build(zip_path, root) if is_stale(zip_path, root) else zip_path


def main() -> int:
    path = build()
    print(f"{path.relative_to(REPO_ROOT)}: {', '.join(packages())} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
