"""The image docker-compose builds holds every package the project installs (a package missing
from its COPY lines installs fine and fails at the first import in the container)."""

from __future__ import annotations

import re
import sys

from conf.settings import REPO_ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_the_image_copies_every_package() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) ", (REPO_ROOT / "Dockerfile").read_text(), re.M))
    assert packages <= copied, f"Dockerfile does not COPY {sorted(packages - copied)}"


def test_the_image_installs_the_dashboard() -> None:
    assert '".[dashboard]"' in (REPO_ROOT / "Dockerfile").read_text()
