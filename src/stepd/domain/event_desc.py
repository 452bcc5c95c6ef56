"""Event descriptions: a registry entry that says which params an event name takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from stepd.errors import InvalidInput


@dataclass(frozen=True, kw_only=True)
class EventDesc:
    """What an event name means and which fields it carries."""

    name: str  # the event name it describes
    description: str  # for people
    required_fields: tuple[str, ...]  # every event of this name must carry these params
    optional_fields: tuple[str, ...]  # and may carry these; any other param is refused
    public: bool  # shown to every user (kept for compatibility with the original)
    list_in_idm: bool  # kept for compatibility with the original
    author: str | None
    created: datetime
    updated: datetime

    def check(self, params: Mapping[str, object], *, field: str = "params") -> None:
        """Raise InvalidInput naming the first param that breaks this description."""
        for required in self.required_fields:
            if required not in params:
                raise InvalidInput(
                    f"event {self.name!r} requires the param {required!r} "
                    f"(its description requires {list(self.required_fields)})",
                    field=f"{field}.{required}",
                )
        allowed = set(self.required_fields) | set(self.optional_fields)
        for key in params:
            if key not in allowed:
                raise InvalidInput(
                    f"event {self.name!r} does not take the param {key!r} "
                    f"(its description allows {sorted(allowed)})",
                    field=f"{field}.{key}",
                )

    def knows(self, key: str) -> bool:
        return key in self.required_fields or key in self.optional_fields
