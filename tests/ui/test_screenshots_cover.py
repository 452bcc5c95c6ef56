"""scripts/screenshots.py photographs every page of the UI: its PAGES and NOT_PAGES (with
why) name every route of ui/routes.py, and nothing else."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from stepd.ui.routes import router

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"


def _pattern(path: str) -> str:
    """`/ui/tasks/{task}` and `/ui/tasks/{task_id}` alike: the parameters' names differ."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_the_screenshot_script_covers_every_ui_route() -> None:
    spec = importlib.util.spec_from_file_location("screenshots", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    routes = {_pattern(getattr(r, "path", "")) for r in router.routes}
    shot = {_pattern(p) for p in script.PAGES.values()}
    skipped = {_pattern(p) for p in script.NOT_PAGES}
    assert shot.isdisjoint(skipped)
    assert shot | skipped == routes, (routes - shot - skipped, (shot | skipped) - routes)
    assert all(script.NOT_PAGES.values())  # each says why it is no page of its own
    for name in script.PAGES:  # every page is in the docs, at both widths
        for width in script.WIDTHS:
            assert (
                f"screenshots/{name}-{width}.png"
                in (SCRIPT.parents[1] / "docs" / "ui.md").read_text()
            )
