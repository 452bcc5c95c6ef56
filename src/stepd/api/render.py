"""The JSON shapes the API returns."""

from __future__ import annotations

from stepd.domain.event_desc import EventDesc
from stepd.domain.events import Event
from stepd.timeutil import iso


def event_json(event: Event) -> dict[str, object]:
    return event.to_json()


def event_desc_json(desc: EventDesc) -> dict[str, object]:
    return {
        "name": desc.name,
        "description": desc.description,
        "required_fields": list(desc.required_fields),
        "optional_fields": list(desc.optional_fields),
        "public": desc.public,
        "list_in_idm": desc.list_in_idm,
        "author": desc.author,
        "created": iso(desc.created),
        "updated": iso(desc.updated),
    }
