"""Event parameters: flat maps of string keys to JSON scalars.

The original STEP sent every parameter as a string; we accept any JSON scalar
but compare values by one canonical text form, so that the store's index, the
query API (`params__date=2019-01-01`) and the matcher agree on what "equal" means.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

Scalar = str | int | float | bool | None
"""A JSON scalar, the only kind of value an event parameter may hold."""

Params = Mapping[str, Scalar]


def param_text(value: Scalar) -> str | None:
    """The canonical text of a parameter value (None stays None).

    Strings are themselves; booleans are `true`/`false` as in JSON; numbers are
    their JSON spelling. So `"1"` equals `1`, which is what a user querying by
    URL expects, while `"value01"` never equals `"value1"`.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    # What json.dumps writes for a number, without its encoder's set-up (5x faster):
    # retention spells the params of every event it deletes.
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float) and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value)


def is_scalar(value: object) -> bool:
    """True when `value` may be an event parameter value (NaN and infinities are not JSON)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)
