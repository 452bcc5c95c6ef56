"""The UI's templates and static files ship in a (non-editable) install: package-data covers
every one of them."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "stepd"


def _covers(glob: str, path: str) -> bool:
    """As setuptools reads a package-data glob: `*` stays within one folder."""
    g, p = Path(glob), Path(path)
    return g.parent == p.parent and fnmatch(p.name, g.name)


def test_every_ui_template_and_static_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["stepd"]
    files = [
        p.relative_to(PACKAGE).as_posix()
        for folder in ("ui/templates", "ui/static", "api/docs_static")
        for p in (PACKAGE / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert any(f.endswith("story.html") for f in files) and "ui/static/style.css" in files
    assert "api/docs_static/swagger-init.js" in files
    missed = [f for f in files if not any(_covers(g, f) for g in globs)]
    assert not missed, f"add these to [tool.setuptools.package-data] in pyproject.toml: {missed}"
