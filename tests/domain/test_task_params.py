"""A rerun's params against the task type's declared params (domain/task_params.py)."""

from __future__ import annotations

import pytest

from stepd.domain.task_params import check_params
from stepd.errors import InvalidInput

PYTHON = {
    "name": "T_TYPED",
    "kind": "python",
    "params": [
        {"name": "count", "required": True, "type": "int"},
        {"name": "label", "required": True, "type": "str"},
        {"name": "ratio", "required": False, "type": "float"},
    ],
}
COMMAND = {
    "name": "ECHO_DATE",
    "kind": "command",
    "params": [{"name": "date", "required": True, "type": "str"}],
}


def test_values_a_python_type_takes_pass_as_the_worker_would_coerce_them() -> None:
    params = {"count": "3", "label": "x", "ratio": 2}
    assert check_params("T_TYPED", PYTHON, params, {"count": "3", "ratio": 2}) == []


def test_a_value_a_python_type_cannot_take_is_refused_naming_the_param() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_params("T_TYPED", PYTHON, {"count": "many", "label": "x"}, {"count": "many"})
    assert caught.value.field == "params.count" and "int" in caught.value.message


def test_a_required_param_the_params_lack_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_params("ECHO_DATE", COMMAND, {"day": "x"}, {"day": "x"})
    assert caught.value.field == "params.date"


def test_a_command_type_substitutes_any_scalar_so_its_values_are_not_type_checked() -> None:
    assert check_params("ECHO_DATE", COMMAND, {"date": 20190101}, {"date": 20190101}) == []


def test_an_undeclared_param_is_a_warning_and_an_unknown_type_is_not_checked() -> None:
    [warning] = check_params("T_TYPED", PYTHON, {"count": 1, "label": "x", "c": 1}, {"c": 1})
    assert "'c'" in warning and "count" in warning
    assert check_params("NOBODY_KNOWS", None, {"anything": []}, {"anything": []}) == []
