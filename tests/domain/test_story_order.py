"""The story's order and summary (domain/story_order.py): pure, on the entries' JSON."""

from __future__ import annotations

from typing import Any

from stepd.domain.story_order import MAX_EXPECTED, lead_with_the_answer


def miss(param: str, expected: object, actual: object = "A", dep_index: int = 0) -> dict[str, Any]:
    return {"dep_index": dep_index, "param": param, "expected": expected, "actual": actual,
            "reason": "differs"}  # fmt: skip


def entry(config_id: str, outcome: str, **more: Any) -> dict[str, Any]:
    return {"config_id": config_id, "outcome": outcome, **more}


def test_what_fired_comes_first_then_waiting_then_near_misses_then_the_groups() -> None:
    entries = [
        entry("far1", "not_matched", not_matched=[miss("taskType", "X"), miss("env", "e")]),
        entry("near", "not_matched", not_matched=[miss("taskStatus", "FAILURE")]),
        entry("wait", "waiting"),
        entry("far2", "not_matched", not_matched=[miss("taskType", "Y"), miss("date", "~")]),
        entry("fired", "fired"),
        entry("failed", "failed"),
    ]
    configs, summary = lead_with_the_answer(entries)
    assert [c["config_id"] for c in configs] == ["fired", "wait", "near", "failed", "far1", "far2"]
    assert summary["shown"] == 4
    assert configs[2]["near_miss"] is True and "near_miss" not in configs[4]
    assert summary["groups"] == [
        {"param": "taskType", "expected": ["X", "Y"], "count": 2, "config_ids": ["far1", "far2"],
         "text": "2 configs expect another taskType"},
    ]  # fmt: skip
    counts = summary["counts"]
    assert isinstance(counts, dict)
    assert (counts["fired"], counts["waiting"], counts["near_miss"], counts["not_matched"]) == (
        1, 1, 1, 2,
    )  # fmt: skip
    assert counts["failed"] == 1 and counts["total"] == 6 and counts["deleted"] == 0


def test_a_near_miss_is_measured_on_the_closest_dependency() -> None:
    # Dependency 0 differs in two params, dependency 1 in one: one param from firing.
    near = entry("near", "not_matched", not_matched=[
        miss("a", 1), miss("b", 2), miss("c", 3, dep_index=1),
    ])  # fmt: skip
    configs, summary = lead_with_the_answer([near])
    assert configs[0].get("near_miss") is True and summary["shown"] == 1


def test_a_config_differing_in_several_params_joins_the_biggest_group() -> None:
    entries = [
        entry(f"t{i}", "not_matched", not_matched=[miss("date", "d"), miss("taskType", f"T{i}")])
        for i in range(8)
    ]
    both = entry("both", "not_matched", not_matched=[miss("env", "x"), miss("taskType", "Z")])
    _, summary = lead_with_the_answer([both, *entries])
    [group] = summary["groups"]  # type: ignore[misc]
    assert group["param"] == "taskType" and group["count"] == 9
    assert len(group["expected"]) == MAX_EXPECTED and group["expected"][0] == "Z"


def test_a_disabled_config_the_event_matches_is_shown_the_others_collapse() -> None:
    entries = [
        entry("off-far", "disabled", differs=[miss("taskType", "X"), miss("env", "e")]),
        entry("off-match", "disabled", differs=[]),
        entry("off-near", "disabled", differs=[miss("env", "e")]),
    ]
    configs, summary = lead_with_the_answer(entries)
    assert [c["config_id"] for c in configs] == ["off-match", "off-near", "off-far"]
    assert summary["shown"] == 2
    assert summary["counts"]["disabled"] == 3  # type: ignore[index]
    assert [g["param"] for g in summary["groups"]] == ["env"]  # type: ignore[attr-defined]


def test_a_deleted_config_that_fired_stays_first_and_is_counted() -> None:
    gone = entry("gone", "fired", deleted=True)
    configs, summary = lead_with_the_answer([gone, entry("live", "fired")])
    assert [c["config_id"] for c in configs] == ["gone", "live"]
    assert summary["counts"]["deleted"] == 1 and summary["counts"]["fired"] == 2  # type: ignore[index]


def test_configs_of_an_event_not_evaluated_yet_are_one_group() -> None:
    configs, summary = lead_with_the_answer([entry("a", "pending"), entry("b", "pending")])
    assert summary["shown"] == 0 and len(configs) == 2
    [group] = summary["groups"]  # type: ignore[misc]
    assert group["param"] is None and group["count"] == 2 and "not evaluated" in group["text"]


def test_an_empty_story_has_zero_counts() -> None:
    configs, summary = lead_with_the_answer([])
    assert configs == [] and summary["groups"] == [] and summary["shown"] == 0
    assert set(summary["counts"].values()) == {0}  # type: ignore[attr-defined]


def test_many_configs_one_param_away_in_the_same_param_are_the_unrelated_ones() -> None:
    # 27 configs each for its own taskType: one param away, but that param is what tells
    # them apart. Two for another taskStatus are the near misses.
    other_types = [entry(f"t{i}", "not_matched", not_matched=[miss("taskType", f"T{i}")])
                   for i in range(27)]  # fmt: skip
    statuses = [entry(f"s{i}", "not_matched", not_matched=[miss("taskStatus", "FAILURE")])
                for i in range(2)]  # fmt: skip
    configs, summary = lead_with_the_answer([*other_types, *statuses])
    assert [c["config_id"] for c in configs[:2]] == ["s0", "s1"] and summary["shown"] == 2
    [group] = summary["groups"]  # type: ignore[misc]
    assert group["text"] == "27 configs expect another taskType"
    assert group["expected"] == ["T0", "T1", "T2", "T3", "T4"] and group["count"] == 27
    assert summary["counts"]["near_miss"] == 2  # type: ignore[index]
    assert summary["counts"]["not_matched"] == 27  # type: ignore[index]
