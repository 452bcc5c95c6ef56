"""How values and times read for a person: shared by the CLI's tables and the web UI."""

from __future__ import annotations

import json


def value_text(value: object) -> str:
    """A value as a person types it: strings bare, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def when(stamp: object) -> str:
    """`2019-01-01T12:00:00.123456Z` as `2019-01-01 12:00:00`: enough for a person."""
    if stamp is None:
        return "-"
    text = str(stamp)
    return text[:19].replace("T", " ") if len(text) >= 19 else text
