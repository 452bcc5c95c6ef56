"""A story that leads with the answer: the order of its configs, their counts and the
collapsed groups (issue 13).

With dozens of configs on one event name, the one that fired drowns among the ones that
never could have. So a story lists what fired first, then what waits (and for which
dependency), then the near misses (a dependency differs from the event in one param
only, the likely typo or wrong status), then what is worth reading in full (a config that would fire
now, one the story could not evaluate, a disabled one the event would have matched),
and last the rest, grouped by the one param they differ in ("27 configs expect another
taskType"): a reader expands a group only when it is the one they look for.

Pure: it works on the story's config entries (the JSON the API sends) and adds nothing
to them but `near_miss`; every entry stays in `configs`, in the new order.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# How many of a group's expected values the summary names (the rest are counted).
MAX_EXPECTED = 5
# A config one param away from the event is a near miss, unless more than this many
# configs are one param away in that same param: then that param is what tells the
# configs apart (27 configs on `cryptaTaskEvent`, each for its own `taskType`), and
# they are the unrelated ones, collapsed into one group.
NEAR_MISS_MAX = 3

# The counts a summary always has, in the order a reader wants them. They are disjoint
# (their sum is `total`) but for `deleted`, which is a flag on a config of any outcome.
COUNT_KEYS = (
    "fired",
    "waiting",
    "near_miss",
    "not_matched",
    "not_fired",
    "failed",
    "disabled",
    "pending",
)

# Where each kind shown in full goes (lower first); any other kind (a config that would
# fire now, one the story could not evaluate) comes after them, before the groups.
_FULL_RANK = {"fired": 0, "waiting": 1, "near_miss": 2}
_OTHER_RANK = 3
# The kinds that collapse into groups (a disabled config only when unrelated).
_COLLAPSED = frozenset({"not_matched", "pending"})


def _closest(mismatches: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The mismatches of the dependency closest to the event (fewest failed params; the
    first such dependency on a tie): what "differs in one param" is measured on."""
    by_dep: dict[object, list[Mapping[str, Any]]] = {}
    for miss in mismatches:
        by_dep.setdefault(miss.get("dep_index"), []).append(miss)
    if not by_dep:
        return []
    return min(by_dep.values(), key=len)


def _differs(entry: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """What the event lacks for this config: the closest dependency's mismatches, or None
    when the story has no such list for it (a disabled config the event matches)."""
    misses = entry.get("not_matched") if entry.get("outcome") == "not_matched" else None
    if misses is None and entry.get("outcome") == "disabled":
        misses = entry.get("differs")
    if not misses:
        return None
    return _closest(misses)


@dataclass(frozen=True)
class _Entry:
    """A story's entry with what the ordering asks of it, worked out once."""

    json: dict[str, Any]  # the entry itself (the API's JSON)
    differs: list[Mapping[str, Any]] | None  # `_differs` of it

    @property
    def one_param(self) -> str | None:
        """The param it is one param away in (None: it is not one param away)."""
        d = self.differs
        return str(d[0].get("param")) if d is not None and len(d) == 1 else None


def _kind(entry: _Entry, one_param_away: Counter[str]) -> str:
    """The count an entry adds to: its outcome, with near misses told apart."""
    outcome = str(entry.json.get("outcome"))
    if outcome == "not_matched" and _near(entry, one_param_away):
        return "near_miss"
    return outcome


def _near(entry: _Entry, one_param_away: Counter[str]) -> bool:
    """One param away, in a param few configs are one param away in (NEAR_MISS_MAX)."""
    param = entry.one_param
    return param is not None and one_param_away[param] <= NEAR_MISS_MAX


def _full_rank(entry: _Entry, kind: str, one_param_away: Counter[str]) -> int | None:
    """Where an entry shown in full goes (lower first), or None when it collapses."""
    if kind in _COLLAPSED:
        return None
    if kind == "disabled":
        # The event would have matched it (or nearly): why it did not fire is "disabled",
        # which is the answer a reader looks for. Otherwise it is as unrelated as any.
        related = entry.differs is None or _near(entry, one_param_away)
        return _OTHER_RANK if related else None
    return _FULL_RANK.get(kind, _OTHER_RANK)


def _group_params(rest: Sequence[_Entry]) -> list[str | None]:
    """The one param each collapsed entry is grouped by: of the params its closest
    dependency differs in, the one most collapsed entries differ in (then by name), so
    that the groups are as few as can be. None for entries the reactor has not
    evaluated (they differ in nothing yet)."""
    params_of = [
        sorted({str(m.get("param")) for m in e.differs or []})
        if e.json.get("outcome") != "pending"
        else []
        for e in rest
    ]
    common = Counter(p for params in params_of for p in params)
    return [min(params, key=lambda p: (-common[p], p)) if params else None for params in params_of]


def _expected(entries: Sequence[_Entry], param: str) -> list[object]:
    """The distinct values the entries expect for `param`, the first MAX_EXPECTED."""
    seen: dict[str, object] = {}
    for entry in entries:
        for miss in entry.differs or []:
            if miss.get("param") == param:
                seen.setdefault(json.dumps(miss.get("expected"), sort_keys=True), miss["expected"])
        if len(seen) >= MAX_EXPECTED:
            break
    return list(seen.values())[:MAX_EXPECTED]


def _configs(count: int) -> str:
    return f"{count} config{'' if count == 1 else 's'}"


def _group(param: str | None, entries: Sequence[_Entry]) -> dict[str, object]:
    count = len(entries)
    if param is None:
        text = f"{_configs(count)} not evaluated yet: the reactor has not seen this event"
        expected: list[object] = []
    else:
        verb = "expects" if count == 1 else "expect"
        text = f"{_configs(count)} {verb} another {param}"
        expected = _expected(entries, param)
    return {
        "param": param,
        "expected": expected,
        "count": count,
        "config_ids": [e.json.get("config_id") for e in entries],
        "text": text,
    }


def lead_with_the_answer(
    entries: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, object]]:
    """The entries in the story's order, and the summary: `{counts, shown, groups}`.

    `configs[:shown]` are the entries a reader sees in full; the others follow in the
    order of `groups`, each group's entries together. A near miss gets `near_miss: true`.
    The sort is stable: within a kind, the entries keep the order they came in (a
    deleted config that fired, listed first, stays first).
    """
    counts = dict.fromkeys(COUNT_KEYS, 0)
    seen = [_Entry(e, _differs(e)) for e in entries]
    one_param_away = Counter(p for e in seen if (p := e.one_param) is not None)
    full: list[tuple[int, int, _Entry]] = []
    rest: list[_Entry] = []
    for position, entry in enumerate(seen):
        kind = _kind(entry, one_param_away)
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "near_miss":
            entry.json["near_miss"] = True
        rank = _full_rank(entry, kind, one_param_away)
        if rank is None:
            rest.append(entry)
        else:
            full.append((rank, position, entry))
    full.sort(key=lambda item: item[:2])

    by_param: dict[str | None, list[_Entry]] = {}
    for param, entry in zip(_group_params(rest), rest, strict=True):
        by_param.setdefault(param, []).append(entry)
    # The biggest group first: it is the one a reader most needs summed up.
    ordered = sorted(by_param.items(), key=lambda kv: (-len(kv[1]), kv[0] or ""))
    groups = [_group(param, members) for param, members in ordered]

    counts["deleted"] = sum(1 for e in entries if e.get("deleted"))
    counts["total"] = len(entries)
    configs = [e.json for _, _, e in full] + [e.json for _, members in ordered for e in members]
    return configs, {"counts": counts, "shown": len(full), "groups": groups}
