"""UTC time, the only time stepd stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands them back naive)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, the form every API response uses."""
    return as_utc(value).isoformat().replace("+00:00", "Z")


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """What a person types for a time: a time ago (`30m`, `2h`, `7d`, `1w`) or what
    `parse_instant` takes. ValueError saying both forms for anything else."""
    from stepd.domain.durations import DURATION, UNIT_SECONDS  # (the domain imports us)

    ago = DURATION.fullmatch(text)
    try:
        if ago is not None:
            seconds = float(ago.group(1)) * UNIT_SECONDS[ago.group(2)]
            return (now or utcnow()) - timedelta(seconds=seconds)
        return parse_instant(text)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{text!r} is neither a time ago (30m, 2h, 7d) nor an ISO 8601 date or time "
            "(2019-01-01, 2019-01-01T06:00Z)"
        ) from None


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date or date and time as an aware UTC datetime: `2019-01-01` (its
    midnight), `2019-01-01T06:00`, `2019-01-01T06:00:00.5Z`, `...+03:00`; a time without
    an offset is UTC. ValueError (saying what is accepted) for anything else."""
    try:
        return as_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or time (2019-01-01, 2019-01-01T06:00:00Z)"
        ) from None
    except OverflowError:  # in UTC, before year 1 or after 9999
        raise ValueError(f"{text!r} is out of range: years 1 to 9999, in UTC") from None
