"""The deployment's stored settings (store/deployment.py): shown to anyone who may read,
changed by an admin only (they change what every process of the deployment does)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stepd.errors import Forbidden, InvalidInput
from stepd.store import deployment
from stepd.store.engine import Store
from stepd.store.tokens import Principal
from stepd.timeutil import iso, utcnow


@dataclass
class DeploymentService:
    store: Store

    def show(self) -> list[dict[str, Any]]:
        """Every key: its value (stored, or the default every process falls back to)."""
        with self.store.read() as conn:
            stored = deployment.read(conn)
        shown = []
        for key in deployment.KEYS.values():
            entry = stored.get(key.name)
            shown.append(
                {
                    "key": key.name,
                    "value": key.default if entry is None else entry.value,
                    "stored": entry is not None,
                    "default": key.default,
                    "flag": key.flag,
                    "description": key.description,
                    "updated": None if entry is None else iso(entry.updated),
                    "updated_by": None if entry is None else entry.updated_by,
                }
            )
        return shown

    def set(self, values: Mapping[str, object], principal: Principal) -> list[dict[str, Any]]:
        """Change the keys in `values` (every one checked first: all or nothing)."""
        if not principal.is_admin:
            raise Forbidden(
                "only an admin may change the deployment's settings (every server and "
                "worker follows them)"
            )
        if not values:
            raise InvalidInput(
                f"send an object of the settings to change: {', '.join(deployment.KEYS)}"
            )
        checked = {key: deployment.check(key, value) for key, value in values.items()}
        with self.store.write() as conn:
            for key, value in checked.items():
                deployment.write(conn, key, value, principal.user, utcnow())
        return self.show()
