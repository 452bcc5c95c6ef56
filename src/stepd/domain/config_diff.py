"""A config's change as a person reads it, field by field: what `stepd configs sync` prints
for an updated config and what the config page shows for each version in its history.

One printer for both, so that the terminal and the page never tell a change differently.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Kind = Literal["change", "field", "old", "new", "same"]


@dataclass(frozen=True, kw_only=True)
class DiffLine:
    """One line of a change."""

    kind: Kind  # change: `key: old -> new`; field: `key:` heading a diff of old, new, same lines
    text: str  # the line as printed (a diff line keeps its `-`, `+` or ` ` after two spaces)


_MARKS: dict[str, Kind] = {"-": "old", "+": "new"}  # a unified diff's line marks


def _compact(value: object, *, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=indent)


def diff_lines(changes: Mapping[str, Mapping[str, object]], width: int = 60) -> list[DiffLine]:
    """Changed fields (`{field: {old, new}}`, as the history keeps them): `priority: 0 -> 5`
    when both values are short, else a unified diff of the field's pretty JSON."""
    lines: list[DiffLine] = []
    for key, change in changes.items():
        old, new = _compact(change.get("old")), _compact(change.get("new"))
        if len(old) + len(new) <= width:
            lines.append(DiffLine(kind="change", text=f"{key}: {old} -> {new}"))
            continue
        lines.append(DiffLine(kind="field", text=f"{key}:"))
        a = _compact(change.get("old"), indent=2).splitlines()
        b = _compact(change.get("new"), indent=2).splitlines()
        for line in difflib.unified_diff(a, b, lineterm="", n=1):
            if line.startswith(("---", "+++", "@@")):
                continue
            lines.append(DiffLine(kind=_MARKS.get(line[:1], "same"), text=f"  {line}"))
    return lines


def change_lines(changes: Mapping[str, Mapping[str, object]], width: int = 60) -> list[str]:
    """`diff_lines` as plain text, a line each."""
    return [line.text for line in diff_lines(changes, width)]
