"""Unit tests of fitting params to a task type: `substitute` and `call_args`."""

from __future__ import annotations

from typing import Any

import pytest

from stepd.runner.params import ParamsMismatch, call_args, substitute


class Secretive:
    """A value whose attributes a template must never reach."""

    secret = "SECRET"

    def __str__(self) -> str:
        return "plain"


def test_substitute_replaces_plain_names_with_their_values() -> None:
    assert substitute("--date={date}", {"date": "2020-01-01"}) == "--date=2020-01-01"
    assert substitute("{a}-{b}-{a}", {"a": 1, "b": 2.5}) == "1-2.5-1"


def test_substitute_never_does_attribute_or_index_access() -> None:
    params = {"x": Secretive(), "items": ["zero"]}

    assert substitute("{x.__class__}", params) == "{x.__class__}"
    assert substitute("{x.secret}", params) == "{x.secret}"
    assert substitute("{items[0]}", params) == "{items[0]}"
    assert substitute("{x!r}", params) == "{x!r}"
    assert substitute("{x:>10}", params) == "{x:>10}"
    assert substitute("{x}", params) == "plain"


def test_substitute_double_braces_are_literal_braces() -> None:
    assert substitute("{{date}}", {"date": "D"}) == "{date}"
    assert substitute("{{{date}}}", {"date": "D"}) == "{D}"
    assert substitute("{{", {}) == "{"
    assert substitute("}}", {}) == "}"
    assert substitute('{{"json": true}}', {}) == '{"json": true}'


def test_substitute_a_missing_param_is_an_error_naming_it() -> None:
    with pytest.raises(ParamsMismatch, match="'date'"):
        substitute("--date={date}", {"other": "x"})


def test_substitute_inserts_a_value_verbatim_and_does_not_substitute_inside_it() -> None:
    value = "x; rm -rf / && $(touch pwned) `id` {other}"

    assert substitute("{v}", {"v": value, "other": "NO"}) == value


def test_substitute_spells_booleans_and_none_plainly() -> None:
    assert substitute("{a},{b},{c}", {"a": True, "b": False, "c": None}) == "true,false,"


def test_substitute_quotes_values_for_urls_when_asked() -> None:
    url = substitute("http://h/{p}?q={q}", {"p": "a b/c", "q": "x&y=z"}, quote_values=True)

    assert url == "http://h/a%20b%2Fc?q=x%26y%3Dz"


def typed(count: int, label: str, ratio: float = 0.5, tags: list[str] | None = None) -> None:
    """Annotations are strings here (`from __future__ import annotations`): resolved anyway."""


def test_call_args_coerces_values_to_the_annotations() -> None:
    args = call_args(typed, {"count": "3", "label": "L", "ratio": "1.5", "tags": ["a"]})

    assert args == {"count": 3, "label": "L", "ratio": 1.5, "tags": ["a"]}
    assert isinstance(args["count"], int)


def test_call_args_leaves_defaults_to_the_function_and_drops_params_it_does_not_take() -> None:
    assert call_args(typed, {"count": 1, "label": "L", "unused": "x"}) == {
        "count": 1,
        "label": "L",
    }


def test_call_args_missing_required_param_is_an_error_naming_it() -> None:
    with pytest.raises(ParamsMismatch, match="'count'"):
        call_args(typed, {"label": "L"})


def test_call_args_ill_typed_param_is_an_error_naming_it() -> None:
    with pytest.raises(ParamsMismatch, match="'count'") as caught:
        call_args(typed, {"count": "three", "label": "L"})
    assert "three" in str(caught.value)
    with pytest.raises(ParamsMismatch, match="'tags'"):
        call_args(typed, {"count": 1, "label": "L", "tags": "not-a-list"})


def test_call_args_passes_the_rest_to_var_keyword() -> None:
    def rest(date: str, **more: Any) -> None:
        pass

    assert call_args(rest, {"date": "D", "a": 1, "b": "2"}) == {"date": "D", "a": 1, "b": "2"}


def test_call_args_unannotated_params_pass_through_unchanged() -> None:
    def loose(anything, other=None):  # type: ignore[no-untyped-def]
        pass

    assert call_args(loose, {"anything": {"k": [1]}}) == {"anything": {"k": [1]}}
