"""A backfill's params (domain/backfills.py): ranges, lists and values, the bindings'
order, and every way params can be wrong, each a 400 naming the field."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepd.domain.backfills import MAX_BINDINGS, binding_at, bindings, parse_axes, size
from stepd.errors import InvalidInput


def test_dates_by_day_times_a_list_in_order_the_last_param_fastest() -> None:
    axes = parse_axes(
        {"date": {"from": "2019-01-30", "to": "2019-02-01"}, "mrbasename": ["hahn", "arnold"]}
    )
    assert size(axes) == 6
    assert list(bindings(axes)) == [
        {"date": "2019-01-30", "mrbasename": "hahn"},
        {"date": "2019-01-30", "mrbasename": "arnold"},
        {"date": "2019-01-31", "mrbasename": "hahn"},
        {"date": "2019-01-31", "mrbasename": "arnold"},
        {"date": "2019-02-01", "mrbasename": "hahn"},
        {"date": "2019-02-01", "mrbasename": "arnold"},
    ]


def test_integer_ranges_single_values_and_a_leap_day() -> None:
    axes = parse_axes(
        {
            "n": {"from": -1, "to": 1},
            "env": "stable",
            "day": {"from": "2020-02-28", "to": "2020-03-01"},
        }
    )
    found = list(bindings(axes))
    assert len(found) == 9
    assert {b["n"] for b in found} == {-1, 0, 1}
    assert {b["env"] for b in found} == {"stable"}
    assert [b["day"] for b in found[:3]] == ["2020-02-28", "2020-02-29", "2020-03-01"]


@given(
    st.lists(
        st.lists(st.integers(0, 50), min_size=1, max_size=4, unique=True), min_size=1, max_size=4
    )
)
def test_binding_number_i_is_the_ith_of_the_cartesian_product(lists: list[list[int]]) -> None:
    params = {f"k{i}": values for i, values in enumerate(lists)}
    axes = parse_axes(params)
    expected = [dict(zip(params, combo, strict=True)) for combo in itertools.product(*lists)]
    assert [binding_at(axes, i) for i in range(size(axes))] == expected


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"date": {"from": "2019-02-01", "to": "2019-01-01"}}, "params.date.from", "after"),
        ({"n": {"from": 5, "to": 1}}, "params.n.from", "above"),
        ({"date": {"from": "2019-01-01", "to": 3}}, "params.date", "both dates"),
        ({"date": {"from": "2019-13-01", "to": "2019-12-01"}}, "params.date", "both dates"),
        ({"date": {"from": "2019-01-01"}}, "params.date", "lacks 'to'"),
        ({"date": {"from": "2019-01-01", "to": "2019-01-02", "step": 2}}, "params.date", "step"),
        ({"date": {"from": 1.5, "to": 3}}, "params.date", "integers"),
        ({"x": []}, "params.x", "empty"),
        ({"x": [{"a": 1}]}, "params.x", "scalars"),
        ({"x": ["a", "a"]}, "params.x", "repeats"),
        ({"x": None}, "params.x", "a value"),
        ({"x": [[1]]}, "params.x", "scalars"),
        ({}, "params", "object"),
        ([1], "params", "object"),
        ({"n": {"from": 0, "to": MAX_BINDINGS}}, "params", "at most 10,000"),
        ({"a": list(range(101)), "b": list(range(100))}, "params", "10,100 bindings"),
        ({"n": {"from": 0, "to": 10**18}}, "params", "at most"),
        ({"d": {"from": "0001-01-01", "to": "9999-12-31"}}, "params", "at most"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params: object, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_axes(params)
    assert caught.value.field == field
    assert words in caught.value.message, caught.value.message


def test_exactly_ten_thousand_bindings_are_allowed() -> None:
    axes = parse_axes({"a": list(range(100)), "b": {"from": 1, "to": 100}})
    assert size(axes) == MAX_BINDINGS
    assert binding_at(axes, MAX_BINDINGS - 1) == {"a": 99, "b": 100}
