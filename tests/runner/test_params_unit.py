"""Unit tests of fitting params to a task type: `substitute` and `call_args`."""

from __future__ import annotations

from typing import Any

import pytest

from stepd.runner.params import ParamsMismatch, call_args, command_argv, substitute
from stepd.runner.registry import command_task


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


@pytest.mark.parametrize(
    ("argv", "params"),
    [
        (["ssh", "{host}", "uptime"], {"host": "-oProxyCommand=touch /tmp/x"}),
        (["ls", "{a}{host}"], {"a": "", "host": "-l"}),  # an empty value before it
        (["ls", "{host}.txt"], {"host": "--all"}),
        (["ls", "x", "-", "{host}"], {"host": "-l"}),  # `-` is not `--`
        (["ls", "x--", "{host}"], {"host": "-l"}),
    ],
)
def test_command_argv_refuses_a_value_that_starts_an_item_with_a_dash(
    argv: list[str], params: dict[str, Any]
) -> None:
    with pytest.raises(ParamsMismatch, match=r"param 'host'.*starts with '-'"):
        command_argv(argv, params)


@pytest.mark.parametrize(
    ("argv", "params", "expected"),
    [
        (["ssh", "--", "{host}"], {"host": "-o"}, ["ssh", "--", "-o"]),
        (["ssh", "-l", "{user}"], {"user": "bob"}, ["ssh", "-l", "bob"]),
        (["ls", "--color={c}"], {"c": "-x"}, ["ls", "--color=-x"]),
        (["ls", "{{{c}"], {"c": "-x"}, ["ls", "{-x"]),
        (["ls", "{a}-x"], {"a": ""}, ["ls", "-x"]),  # the dash is the argv's own text
    ],
)
def test_command_argv_passes_dash_values_after_double_dash_or_after_literal_text(
    argv: list[str], params: dict[str, Any], expected: list[str]
) -> None:
    assert command_argv(argv, params) == expected


def test_command_argv_passes_dash_values_of_the_params_a_type_allows() -> None:
    params = {"host": "-o", "port": "-1"}
    argv = ["ssh", "{host}", "{port}"]
    assert command_argv(argv, params, allow_option_values=True) == ["ssh", "-o", "-1"]
    with pytest.raises(ParamsMismatch, match="'port'"):
        command_argv(argv, params, allow_option_values=frozenset({"host"}))


def test_command_task_refuses_to_allow_a_param_its_argv_does_not_use() -> None:
    with pytest.raises(ValueError, match="hots"):
        command_task("T", argv=["ssh", "{host}"], allow_option_values=("hots",))
    allowed = command_task("T", argv=["ssh", "{host}"], allow_option_values="host")
    assert allowed.allow_option_values == frozenset({"host"})
