"""Durations as people write them in configs and settings: `7d`, `12h`, `30m`, `90s`.

Apart from domain/configs.py so that what reads a duration at start-up (the settings'
retention) does not load the configs' templating with it.
"""

from __future__ import annotations

import re

from stepd.errors import InvalidInput

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: object, *, field: str, limit: float | None = None) -> float:
    """Seconds in a duration such as `7d`, `12h`, `30m`, `90s` (or a number of seconds).

    With `limit`, a duration longer than `limit` seconds is refused too.
    """
    seconds: float | None = None
    if isinstance(text, int | float) and not isinstance(text, bool):
        try:
            seconds = float(text)
        except OverflowError:  # an integer of hundreds of digits
            seconds = float("inf")
    elif isinstance(text, str) and (match := DURATION.match(text)) is not None:
        seconds = float(match.group(1)) * UNIT_SECONDS[match.group(2)]
    # `not seconds > 0` also refuses NaN
    if seconds is None or not seconds > 0:
        raise InvalidInput(
            f"{field} must be a positive duration such as 30m, 12h or 7d, not {text!r}",
            field=field,
        )
    if limit is not None and not seconds <= limit:
        raise InvalidInput(
            f"{field} must be at most {limit:g} seconds (10 years), not {text!r}", field=field
        )
    return seconds
