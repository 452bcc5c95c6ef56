"""One error root, one class per failure; the API maps each class to an HTTP code.

Every message says what was wrong and, where it helps, how to fix it.
"""

from __future__ import annotations


class StepdError(Exception):
    """The root of every error stepd reports to a person or a client."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # the request field at fault, e.g. "events[3].name"

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidInput(StepdError):
    """The request is well-formed but a value in it is not acceptable."""

    status_code = 400
    code = "invalid_input"


class MalformedBody(StepdError):
    """The body could not be read as JSON or form data."""

    status_code = 400
    code = "malformed_body"


class BodyTooLarge(StepdError):
    """The body is larger than the server accepts."""

    status_code = 413
    code = "body_too_large"


class Unauthorized(StepdError):
    """No valid token was presented."""

    status_code = 401
    code = "unauthorized"


class Forbidden(StepdError):
    """The token is valid but its user may not do this."""

    status_code = 403
    code = "forbidden"


class NotFound(StepdError):
    """The thing asked for does not exist."""

    status_code = 404
    code = "not_found"


class ConfigDeleted(NotFound):
    """The config asked for was deleted: the 404 carries its tombstone (`deleted: true` and
    its last version as `result`), so that a link from an old story or task still says
    what it was."""

    def __init__(self, message: str, *, tombstone: dict[str, object]) -> None:
        super().__init__(message, field="id")
        self.tombstone = tombstone

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "deleted": True, "result": self.tombstone}


class Conflict(StepdError):
    """The request conflicts with what is stored (a duplicate name, a finished task)."""

    status_code = 409
    code = "conflict"


class TooManyRequests(StepdError):
    """The client sent too many bad tokens; it may try again in `retry_after` seconds."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "retry_after": self.retry_after}


class StoreUnavailable(StepdError):
    """The database cannot be reached."""

    status_code = 503
    code = "store_unavailable"


# --- The store's own limits: not the client's fault, and not a bug either ----------------------


class StoreFull(StoreUnavailable):
    """The store is out of space (SQLite: SQLITE_FULL; PostgreSQL: SQLSTATE 53100)."""

    status_code = 507
    code = "store_full"


class QueryTimeout(StoreUnavailable):
    """A statement ran past the store's statement timeout and was cancelled."""

    status_code = 503
    code = "query_timeout"


class SchemaTooNew(StoreUnavailable):
    """The store's schema was migrated by a newer stepd than this one."""

    code = "schema_too_new"
