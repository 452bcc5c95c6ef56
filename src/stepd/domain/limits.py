"""The integer ranges the stores hold, shared by every check of a client's numbers.

SQLite keeps any integer column in 64 bits; PostgreSQL's BIGINT does too, but its
INTEGER is 32 bits. A value is checked against the column it lands in, so that both
stores accept exactly the same inputs (and none overflows later, at fire or claim time).
"""

from __future__ import annotations

from stepd.errors import InvalidInput

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""BIGINT: ids and seqs (tasks.id, events.seq, ...)."""

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
"""INTEGER on PostgreSQL: tasks.priority, kill_timeout, max_retries, semaphores.capacity,
semaphore_holds.weight (and a config's priority, kill_timeout and max_retries, which
become a task's)."""


def check_int(path: str, value: object, *, low: int, high: int) -> int:
    """`value` if it is an integer (not a bool) from `low` to `high`, else an InvalidInput
    naming `path` (the request field, e.g. "priority" or "semaphores[0].weight")."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            f"{path} must be an integer from {low} to {high}, not {_shown(value)}", field=path
        )
    if not low <= value <= high:
        raise InvalidInput(
            f"{path} must be an integer from {low} to {high}; {_shown(value)} is out of range",
            field=path,
        )
    return value


def check_int64(path: str, value: object, *, low: int = INT64_MIN) -> int:
    """`check_int` within a BIGINT column's range (from `low`)."""
    return check_int(path, value, low=low, high=INT64_MAX)


def check_int32(path: str, value: object, *, low: int = INT32_MIN) -> int:
    """`check_int` within an INTEGER column's range (from `low`)."""
    return check_int(path, value, low=low, high=INT32_MAX)


def _shown(value: object) -> str:
    # Python refuses to write an integer of more than 4,300 digits as text.
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
