"""The Python client for the stepd HTTP API (the STEP API v1, and stepd's additions).

    from stepd.client import Client

    with Client("http://127.0.0.1:8080", token) as step:
        event_id = step.create_event("cryptaTaskEvent", {"taskStatus": "SUCCESS"})

Retries are safe: a batch of events carries a `request_id` (generated once per call
unless given) that every retry repeats, and the server answers a repeated
`request_id` with the ids it stored the first time, so a retry after a lost answer
never stores an event twice. Reads, `PUT`s and `DELETE`s of configs and semaphores
are retried too (a `DELETE` whose retry finds nothing to delete has succeeded).
Calls that are not idempotent (creating a config or a task, stopping or restarting a
task, creating or deleting an event description) are retried only when the request
cannot have reached the server.
"""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from stepd import __version__, shapes
from stepd.domain.params import Scalar, param_text
from stepd.errors import StepdError

__all__ = ["ApiError", "Client", "ClientError", "ServerUnreachable"]

DEFAULT_URL = "http://127.0.0.1:8080"

EventSpec = Mapping[str, Any] | tuple[str, Mapping[str, Scalar] | None]
"""One event to send: `{"name": ..., "params": {...}}` or `(name, params)`."""

SemaphoreSpec = str | Mapping[str, Any]
"""A semaphore a task holds: `"name"` (weight 1) or `{"name": ..., "weight": N}`."""

# Errors after which the request surely never reached the server: any call may be retried.
# After any other transport error the server may have acted: only idempotent calls are.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class ServerWarning(UserWarning):
    """The server took a write but warns it may not work as it is (a task type that no
    live worker runs): issued with `warnings.warn`, so a script sees it once per place."""


def _warn(answer: Mapping[str, Any]) -> None:
    for message in answer.get("warnings") or ():
        warnings.warn(str(message), ServerWarning, stacklevel=3)


class ClientError(StepdError):
    """The root of the errors the client raises."""


class ApiError(ClientError):
    """The server answered with an error.

    `status_code` is the HTTP status, `code` the server's error code (such as
    `invalid_input`, `unauthorized`, `not_found`), `message` the server's message and
    `field` the request field at fault, when the server names one.
    """

    def __init__(
        self, message: str, *, status_code: int, code: str, field: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.status_code = status_code
        self.code = code

    def __str__(self) -> str:
        return f"{self.status_code} {self.code}: {self.message}"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The error a non-2xx response carries (or describes, when it is not stepd's JSON)."""
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            code = body.get("error")
            field = body.get("field")
            return cls(
                body["message"],
                status_code=response.status_code,
                code=code if isinstance(code, str) else "http_error",
                field=field if isinstance(field, str) else None,
            )
        text = response.text.strip().replace("\n", " ")[:200]
        reason = response.reason_phrase or "error"
        message = f"HTTP {response.status_code} {reason}" + (f": {text}" if text else "")
        return cls(message, status_code=response.status_code, code="http_error")


class ServerUnreachable(ClientError):
    """No answer from the server (refused, timed out, cut off), even after the retries."""

    status_code = 503
    code = "unreachable"

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url  # the server the client was talking to


def _query_value(key: str, value: Scalar) -> str:
    text = param_text(value)
    if text is None:
        raise ValueError(f"param {key!r}: null cannot be searched for; give a value")
    return text


def _event_body(spec: EventSpec, index: int) -> dict[str, Any]:
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise ValueError(f"events[{index}] must be (name, params), not {spec!r}")
        name, params = spec
        return {"name": name, "params": dict(params or {})}
    if isinstance(spec, Mapping):
        return dict(spec)
    raise TypeError(f"events[{index}] must be a dict or a (name, params) tuple, not {spec!r}")


class Client:
    """A synchronous client for one stepd server.

    `url` is the server's base URL; `token` is sent as `Authorization: OAuth <token>`
    on every call (writes need it; reads need it only on a server run with
    `--private-reads`). `timeout` bounds each attempt in seconds. A failed attempt
    (no connection, a cut-off answer, a 5xx) is retried up to `retries` times,
    sleeping `backoff_seconds`, then twice that, and so on; a 4xx is never retried.
    `transport` replaces httpx's own (a mock in tests, a proxy or custom TLS set-up).

    Failures raise `ApiError` (the server said no) or `ServerUnreachable` (no answer).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        headers = {"User-Agent": f"stepd-client/{__version__}", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"OAuth {token}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections to the server."""
        self._http.close()

    # --- who am I -----------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """Who the token speaks for: `{"user": ..., "admin": ...}` (an ApiError 401 without
        a valid token). Configs the token creates get this `user` as their author."""
        answer = self._call("GET", "/api/v1/whoami")
        return cast(dict[str, Any], answer["result"])

    # --- events -------------------------------------------------------------------------

    def create_event(
        self,
        name: str,
        params: Mapping[str, Scalar] | None = None,
        *,
        request_id: str | None = None,
    ) -> str:
        """Send one event and return its `_id` (safe to retry: see `create_events`)."""
        return self.create_events([(name, params)], request_id=request_id)[0]

    def create_events(
        self,
        events: Sequence[EventSpec],
        *,
        request_id: str | None = None,
        source_type: str | None = None,
        source: str | Mapping[str, Scalar] | None = None,
    ) -> list[str]:
        """Send a batch of events, stored all or nothing, and return their ids in order.

        Each event is `{"name": ..., "params": {...}}` or `(name, params)`. The batch
        carries `request_id` (a new uuid4 when not given), repeated on every retry: the
        server answers a repeated `request_id` with the first call's ids, so a retry
        never stores an event twice. Pass your own `request_id` to make a resend after
        a crash of your process safe too. `source` says who sent the batch: a string,
        or a flat object of scalars as the original client sends (`{"task_id": 123}`),
        which `GET /api/v1/events?source__task_id=123` finds.
        """
        body: dict[str, Any] = {
            "request_id": request_id or str(uuid.uuid4()),
            "events": [_event_body(spec, i) for i, spec in enumerate(events)],
        }
        if source_type is not None:
            body["source_type"] = source_type
        if source is not None:
            body["source"] = source if isinstance(source, str) else dict(source)
        answer = self._call("POST", "/api/v1/events", payload=body)
        return cast(list[str], answer["ids"])

    def get_events(
        self,
        name: str | None = None,
        params: Mapping[str, Scalar] | None = None,
        skip: int = 0,
        limit: int = 30,
        state: str | None = None,
        sort: str | None = None,
        *,
        since: str | None = None,
        until: str | None = None,
        fired: bool = False,
        include_fired: bool = False,
    ) -> list[dict[str, Any]]:
        """Events with `name`, whose params include `params`, in `state` (NEW,
        PROCESSED, REJECTED); `sort` is `_id` (oldest first, the server's default) or
        `-_id` (newest first); `skip` and `limit` page through them; `since` (inclusive)
        and `until` (exclusive), ISO 8601, bound when they were stored. With `fired`, only
        those whose firings made a task; with `include_fired`, each carries `fired`
        (`{tasks, errors}`, or None when it completed no firing)."""
        query: list[tuple[str, Scalar]] = [("skip", str(skip)), ("limit", str(limit))]
        if fired:
            query.append(("fired", "true"))
        if include_fired:
            query.append(("include", "fired"))
        for key, when in (("since", since), ("until", until)):
            if when is not None:
                query.append((key, when))
        if name is not None:
            query.append(("name", name))
        for key, value in (params or {}).items():
            query.append((f"params__{key}", _query_value(key, value)))
        if state is not None:
            query.append(("state", str(state)))
        if sort is not None:
            query.append(("sort", sort))
        answer = self._call("GET", "/api/v1/events", params=httpx.QueryParams(query))
        return cast(list[dict[str, Any]], answer["result"])

    def get_event(self, event_id: str) -> dict[str, Any]:
        """The event with `_id` `event_id` (an ApiError with status 404 if there is none)."""
        answer = self._call("GET", f"/api/v1/events/{_segment(event_id)}")
        return cast(dict[str, Any], answer["result"])

    def reject_event(self, event_id: str) -> str:
        """Mark an event REJECTED, so that it never counts as a dependency again; return its id."""
        answer = self._call("POST", "/api/v1/reject_event", payload={"id": event_id})
        return cast(str, answer["id"])

    # --- event descriptions -------------------------------------------------------------

    def create_event_desc(
        self,
        name: str,
        required_fields: Iterable[str] = (),
        optional_fields: Iterable[str] = (),
        description: str = "",
        public: bool = False,
        list_in_idm: bool = False,
    ) -> dict[str, Any]:
        """Describe the event name `name`: events with it are then validated against
        the fields. Returns the stored description (an ApiError 409 if it exists)."""
        body = {
            "name": name,
            "required_fields": list(required_fields),
            "optional_fields": list(optional_fields),
            "description": description,
            "public": public,
            "list_in_idm": list_in_idm,
        }
        answer = self._call("POST", "/api/v1/event_desc", payload=body, idempotent=False)
        return cast(dict[str, Any], answer["result"])

    def get_event_desc(self, name: str) -> dict[str, Any]:
        """The description of the event name `name`."""
        answer = self._call("GET", f"/api/v1/event_desc/{_segment(name)}")
        return cast(dict[str, Any], answer["result"])

    def update_event_desc(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change only the given fields (`description`, `required_fields`,
        `optional_fields`, `public`, `list_in_idm`) and return the new description."""
        body = {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}
        answer = self._call("PUT", f"/api/v1/event_desc/{_segment(name)}", payload=body)
        return cast(dict[str, Any], answer["result"])

    def delete_event_desc(self, name: str) -> None:
        """Remove the description of `name`; events with it are no longer validated."""
        self._call("DELETE", f"/api/v1/event_desc/{_segment(name)}", idempotent=False)

    def list_event_descs(self) -> list[dict[str, Any]]:
        """Every event description."""
        answer = self._call("GET", "/api/v1/event_desc")
        return cast(list[dict[str, Any]], answer["result"])

    # --- action configs -----------------------------------------------------------------

    def create_config(self, body: Mapping[str, Any]) -> str:
        """Store a config (`name`, `event_deps`, `task_type`, ...) and return its id.

        Not retried once the request may have reached the server: a second try of a
        stored config would answer 409 (its name is taken).
        """
        answer = self._call("POST", "/api/v1/configs", payload=dict(body), idempotent=False)
        _warn(answer)
        return cast(str, answer["id"])

    def validate_configs(self, bodies: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Whether `create_config` would take each body, storing nothing: one
        `{index, ok}` each, with `error`, `message` and `field` when not ok. (A name
        already taken is not checked.)"""
        payload = {"configs": [dict(b) for b in bodies]}
        answer = self._call("POST", "/api/v1/configs/validate", payload=payload)
        return cast(list[dict[str, Any]], answer["result"])

    def get_config(self, config_id: str) -> dict[str, Any]:
        """The config with id `config_id` (its spec plus `_id`, `author`, `version`, times)."""
        answer = self._call("GET", f"/api/v1/configs/{_segment(config_id)}")
        return cast(dict[str, Any], answer["result"])

    def list_configs(self, **filters: Scalar) -> list[dict[str, Any]]:
        """Configs whose fields equal the filters, nested with `__`: `author="robot-crypta"`,
        `task_type="X"`, `enabled=True`, `action_params__action_id="42"`."""
        query: list[tuple[str, Scalar]] = [
            (key, _query_value(key, value)) for key, value in filters.items()
        ]
        answer = self._call("GET", "/api/v1/configs", params=httpx.QueryParams(query))
        return cast(list[dict[str, Any]], answer["result"])

    def update_config(self, config_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the whole config (fields left out take their defaults); return it, with
        its new version (the same version when nothing changed)."""
        answer = self._call("PUT", f"/api/v1/configs/{_segment(config_id)}", payload=dict(body))
        _warn(answer)
        return cast(dict[str, Any], answer["result"])

    def delete_config(self, config_id: str) -> None:
        """Delete a config (its author or an admin only); the tasks it launched stay."""
        self._call("DELETE", f"/api/v1/configs/{_segment(config_id)}", absent_ok_on_retry=True)

    def disable_config(self, config_id: str) -> dict[str, Any]:
        """Pause a config (its author or an admin): it fires on no event until enabled, and
        the events sent meanwhile never fire it. The config, with `disabled: true`."""
        answer = self._call("POST", f"/api/v1/configs/{_segment(config_id)}/disable")
        return _shaped(shapes.ConfigOut, answer["result"], "config")

    def enable_config(self, config_id: str) -> dict[str, Any]:
        """Resume a paused config; the config, with `disabled: false`."""
        answer = self._call("POST", f"/api/v1/configs/{_segment(config_id)}/enable")
        return _shaped(shapes.ConfigOut, answer["result"], "config")

    def run_config(
        self, config_id: str, params: Mapping[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Run a config now for the binding `params` (every free param of it, no other), as
        a firing would: the new task (`id` in it); with `dry_run`, `{dry_run, task}`: the
        task it would make, nothing written. Not retried once the request may have reached
        the server, unless a dry run: a retry would run it twice."""
        answer = self._call(
            "POST",
            f"/api/v1/configs/{_segment(config_id)}/run",
            payload={"params": dict(params), "dry_run": dry_run},
            idempotent=dry_run,
        )
        result = cast(dict[str, Any], answer["result"])
        if dry_run:
            return result
        task = _shaped(shapes.TaskOut, result, "task")
        if answer.get("warnings"):  # a task type no live worker runs
            task["warnings"] = answer["warnings"]
        return task

    def backfill_config(
        self,
        config_id: str,
        params: Mapping[str, Any],
        *,
        max_in_flight: int | None = None,
        dry_run: bool = False,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """Run a config for every binding of the product of `params` (each a value, a list,
        or a range `{"from", "to"}` of dates or integers): the backfill, `max_in_flight`
        tasks at a time; with `dry_run`, the plan (every binding's task). A request_id is
        made when none is given, so that a retry answers the backfill the first attempt
        started instead of starting a second one."""
        body: dict[str, Any] = {"params": dict(params), "dry_run": dry_run}
        if max_in_flight is not None:
            body["max_in_flight"] = max_in_flight
        if not dry_run:
            body["request_id"] = request_id or f"client-{uuid.uuid4().hex}"
        answer = self._call("POST", f"/api/v1/configs/{_segment(config_id)}/backfill", payload=body)
        if dry_run:
            return _shaped(shapes.BackfillPlanOut, answer["result"], "backfill plan")
        return _shaped(shapes.BackfillOut, answer["result"], "backfill")

    def list_backfills(
        self, *, state: str | None = None, config_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Backfills, newest first."""
        query = {"limit": str(limit)}
        if state is not None:
            query["state"] = state
        if config_id is not None:
            query["config_id"] = config_id
        answer = self._call("GET", "/api/v1/backfills", params=httpx.QueryParams(query))
        return _shaped_list(shapes.BackfillOut, answer["result"], "backfill list")

    def get_backfill(self, backfill_id: int | str) -> dict[str, Any]:
        """One backfill: state, progress, its tasks by status (an ApiError 404 if none)."""
        answer = self._call("GET", f"/api/v1/backfills/{_segment(str(backfill_id))}")
        return _shaped(shapes.BackfillOut, answer["result"], "backfill")

    def cancel_backfill(self, backfill_id: int | str) -> dict[str, Any]:
        """Cancel a backfill: nothing more is made, its queued tasks stop (409 if ended)."""
        answer = self._call(
            "POST", f"/api/v1/backfills/{_segment(str(backfill_id))}/cancel", idempotent=False
        )
        return _shaped(shapes.BackfillOut, answer["result"], "backfill")

    def config_history(self, config_id: str) -> list[dict[str, Any]]:
        """Every version of a config: `{version, actor, at, action, change}`, oldest first."""
        answer = self._call("GET", f"/api/v1/configs/{_segment(config_id)}/history")
        return cast(list[dict[str, Any]], answer["result"])

    def test_config(
        self,
        config: Mapping[str, Any] | None = None,
        config_id: str | None = None,
        event: Mapping[str, Any] | None = None,
        events: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """What a config would fire, launching nothing.

        Give the config (`config`, saved or not) or a stored one (`config_id`), and
        either a hypothetical `event` (`{"name": ..., "params": {...}}`, not stored) or
        `events`, a filter of stored events (`{"name": ..., "params": {...}, "limit": N}`).
        Returns `{"config": ..., "events": [{event, outcome, would_fire, waiting,
        not_matched}], "scanned": N, "truncated": bool}`, and a `message` when the server
        stopped at its bound of stored events read. Needs the client's token (ApiError
        401 without one): a trial computes on the server.
        """
        if (config is None) == (config_id is None):
            raise ValueError("give config or config_id (one of them)")
        if (event is None) == (events is None):
            raise ValueError("give event or events (one of them)")
        body: dict[str, Any] = {}
        if config is not None:
            body["config"] = dict(config)
        else:
            body["config_id"] = config_id
        if event is not None:
            body["event"] = dict(event)
        else:
            body["events"] = dict(events or {})
        answer = self._call("POST", "/api/v1/configs/test", payload=body)
        return cast(dict[str, Any], answer["result"])

    # --- event stories ------------------------------------------------------------------

    def event_story(self, event_id: str) -> dict[str, Any]:
        """An event's story, the STEP way: `POST /event_story`, then `GET` the story."""
        started = self._call("POST", "/api/v1/event_story", payload={"id": event_id})
        story_id = cast(str, started["id"])
        answer = self._call("GET", f"/api/v1/event_story/{_segment(story_id)}")
        return cast(dict[str, Any], answer["result"])

    def story(self, event_id: str) -> dict[str, Any]:
        """An event's story in one call: the event, the configs that depend on its name
        (`fired`, `waiting`, `not_matched`, `disabled`, `pending`), the tasks it produced
        and, in `chain`, the stories of the events those tasks emitted."""
        answer = self._call("GET", f"/api/v1/events/{_segment(event_id)}/story")
        return cast(dict[str, Any], answer["result"])

    # --- tasks --------------------------------------------------------------------------

    def list_tasks(self, **filters: Scalar | Sequence[str]) -> list[dict[str, Any]]:
        """Tasks, newest first: filters `type`, `status` (one or a list), `config_id`,
        `event_id`, `author`, `since` and `until` (ISO 8601, on `created`), and `skip`,
        `limit`, `sort` (`-id`, `id`, `priority`)."""
        query: list[tuple[str, Scalar]] = []
        for key, value in filters.items():
            if value is None:
                continue
            if isinstance(value, Sequence) and not isinstance(value, str):
                query.append((key, ",".join(str(v) for v in value)))
            else:
                query.append((key, _query_value(key, value)))
        answer = self._call("GET", "/api/v1/tasks", params=httpx.QueryParams(query))
        return _shaped_list(shapes.TaskOut, answer["result"], "task list")

    def get_task(self, task_id: int | str) -> dict[str, Any]:
        """One task: params, status, times, output, `attempt_history`, the `trigger` (the
        event and binding that launched it) and `emitted_event_ids`."""
        answer = self._call("GET", f"/api/v1/tasks/{_segment(str(task_id))}")
        return _shaped(shapes.TaskDetail, answer["result"], "task")

    def task_logs(
        self, task_id: int | str, attempt: int | None = None, offset: int = 0
    ) -> dict[str, Any]:
        """A task's log from `offset` (the latest attempt unless `attempt` is given):
        `{attempt, status, text, next_offset, finished}`. To follow a log, call again
        with `offset=next_offset` until `finished` is true (the text read with
        `finished` true is the log's end)."""
        query: list[tuple[str, Scalar]] = [("offset", str(offset))]
        if attempt is not None:
            query.append(("attempt", str(attempt)))
        answer = self._call(
            "GET",
            f"/api/v1/tasks/{_segment(str(task_id))}/logs",
            params=httpx.QueryParams(query),
        )
        return _shaped(shapes.TaskLog, answer["result"], "task log")

    def create_task(
        self,
        type: str,
        params: Mapping[str, Any] | None = None,
        priority: int = 0,
        semaphores: Sequence[SemaphoreSpec] | None = None,
        kill_timeout: int | None = None,
        max_retries: int = 0,
    ) -> dict[str, Any]:
        """Run a task type by hand; return the new task (its id is `result["id"]`).

        Not retried once the request may have reached the server: a retry would run
        the task twice.
        """
        body: dict[str, Any] = {
            "type": type,
            "params": dict(params or {}),
            "priority": priority,
            "max_retries": max_retries,
        }
        if semaphores:
            body["semaphores"] = [s if isinstance(s, str) else dict(s) for s in semaphores]
        if kill_timeout is not None:
            body["kill_timeout"] = kill_timeout
        answer = self._call("POST", "/api/v1/tasks", payload=body, idempotent=False)
        _warn(answer)
        return _shaped(shapes.TaskOut, answer["result"], "new task")

    def stop_task(self, task_id: int | str) -> dict[str, Any]:
        """Stop a task: `{id, status, stop_requested}` (an ApiError 409 if it has ended).
        A running task stops when its worker sees the request (in a second or so)."""
        answer = self._call(
            "POST", f"/api/v1/tasks/{_segment(str(task_id))}/stop", idempotent=False
        )
        return _shaped(shapes.TaskStopped, answer["result"], "stop")

    def restart_task(
        self, task_id: int | str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Queue a finished task again as a new attempt: `{id, status, params}` (409 if it
        runs). `params` replace or add to the task's params for that attempt (the earlier
        attempts keep theirs); without them, it runs with the params it had."""
        answer = self._call(
            "POST",
            f"/api/v1/tasks/{_segment(str(task_id))}/restart",
            payload=None if params is None else {"params": dict(params)},
            idempotent=False,
        )
        result = _shaped(shapes.TaskRestarted, answer["result"], "restart")
        if answer.get("warnings"):  # a param the task type does not declare
            result["warnings"] = answer["warnings"]
        return result

    def task_types(self) -> list[dict[str, Any]]:
        """The task types the deployment runs: `{name, kind, params, argv | url, ...,
        workers, live, last_seen}` (`workers`: the live ones that announced it)."""
        answer = self._call("GET", "/api/v1/task_types")
        return cast(list[dict[str, Any]], answer["result"])

    # --- the fleet ----------------------------------------------------------------------

    def workers(self, state: str | None = None) -> list[dict[str, Any]]:
        """Every worker that announced itself (`state`: only "live" or "gone" ones)."""
        query = httpx.QueryParams({} if state is None else {"state": state})
        answer = self._call("GET", "/api/v1/workers", params=query)
        return _shaped_list(shapes.WorkerOut, answer["result"], "workers")

    def worker(self, name: str) -> dict[str, Any]:
        """One worker, with `task_type_details` (each type as it described it)."""
        answer = self._call("GET", f"/api/v1/workers/{_segment(name)}")
        return _shaped(shapes.WorkerDetail, answer["result"], "worker")

    # --- schedules ----------------------------------------------------------------------

    def list_schedules(self) -> list[dict[str, Any]]:
        """Every cron schedule, by name."""
        answer = self._call("GET", "/api/v1/schedules")
        return _shaped_list(shapes.ScheduleOut, answer["result"], "schedule list")

    def get_schedule(self, name: str) -> dict[str, Any]:
        """One schedule, with its `next_tick` and `last_tick` (an ApiError 404 if none)."""
        answer = self._call("GET", f"/api/v1/schedules/{_segment(name)}")
        return _shaped(shapes.ScheduleOut, answer["result"], "schedule")

    def create_schedule(self, name: str, **fields: Any) -> dict[str, Any]:
        """A new schedule: `cron`, and `timezone`, `params`, `enabled`, `catch_up` if given."""
        body = {"name": name, **fields}
        answer = self._call("POST", "/api/v1/schedules", payload=body, idempotent=False)
        return _shaped(shapes.ScheduleOut, answer["result"], "schedule")

    def update_schedule(self, name: str, **changes: Any) -> dict[str, Any]:
        """Change only the given fields of schedule `name`; return it."""
        answer = self._call("PUT", f"/api/v1/schedules/{_segment(name)}", payload=changes)
        return _shaped(shapes.ScheduleOut, answer["result"], "schedule")

    def set_schedule(self, name: str, **fields: Any) -> tuple[dict[str, Any], bool]:
        """Change schedule `name` by the given fields, or create it (then `cron` is
        needed); the schedule and whether it was created."""
        try:
            return self.update_schedule(name, **fields), False
        except ApiError as exc:
            if exc.status_code != 404:
                raise
        return self.create_schedule(name, **fields), True

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule: it ticks no more."""
        self._call("DELETE", f"/api/v1/schedules/{_segment(name)}", absent_ok_on_retry=True)

    # --- semaphores ---------------------------------------------------------------------

    def list_semaphores(self) -> list[dict[str, Any]]:
        """Every semaphore: `{name, capacity, used, auto, updated}`."""
        answer = self._call("GET", "/api/v1/semaphores")
        return _shaped_list(shapes.SemaphoreOut, answer["result"], "semaphore list")

    def get_semaphore(self, name: str) -> dict[str, Any]:
        """One semaphore (an ApiError 404 if there is none)."""
        answer = self._call("GET", f"/api/v1/semaphores/{_segment(name)}")
        return _shaped(shapes.SemaphoreOut, answer["result"], "semaphore")

    def set_semaphore(self, name: str, capacity: int) -> dict[str, Any]:
        """Create a semaphore or change its capacity; return it."""
        answer = self._call(
            "PUT", f"/api/v1/semaphores/{_segment(name)}", payload={"capacity": capacity}
        )
        return _shaped(shapes.SemaphoreOut, answer["result"], "semaphore")

    def delete_semaphore(self, name: str) -> None:
        """Delete a semaphore no running task holds (an ApiError 409 otherwise)."""
        self._call("DELETE", f"/api/v1/semaphores/{_segment(name)}", absent_ok_on_retry=True)

    # --- operations ---------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The server's health: `{"status": "ok", "store": ...}`, or `{"status":
        "unavailable", "message": ...}` when its store does not answer (no retries)."""
        response = self._send("GET", "/healthz", idempotent=True, retry_5xx=False)
        if response.status_code not in (200, 503):
            raise ApiError.from_response(response)
        return _json_object(response)

    # --- the one way out ----------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        payload: object = None,
        params: httpx.QueryParams | None = None,
        idempotent: bool = True,
        absent_ok_on_retry: bool = False,
    ) -> dict[str, Any]:
        """`absent_ok_on_retry`: a 404 after an attempt that may have reached the server
        means that attempt did the job (a DELETE whose answer was lost)."""
        response, maybe_acted = self._attempts(
            method, path, payload=payload, params=params, idempotent=idempotent
        )
        if absent_ok_on_retry and maybe_acted and response.status_code == 404:
            return {}
        if response.is_error:
            raise ApiError.from_response(response)
        return _json_object(response)

    def _send(
        self,
        method: str,
        path: str,
        *,
        payload: object = None,
        params: httpx.QueryParams | None = None,
        idempotent: bool,
        retry_5xx: bool = True,
    ) -> httpx.Response:
        """One request, retried with exponential backoff; the last answer or failure wins."""
        response, _ = self._attempts(
            method, path, payload=payload, params=params, idempotent=idempotent, retry_5xx=retry_5xx
        )
        return response

    def _attempts(
        self,
        method: str,
        path: str,
        *,
        payload: object = None,
        params: httpx.QueryParams | None = None,
        idempotent: bool,
        retry_5xx: bool = True,
    ) -> tuple[httpx.Response, bool]:
        """`_send`, also saying whether an earlier attempt may have reached the server."""
        failure: httpx.TransportError | None = None
        maybe_acted = False
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = self._http.request(method, path, json=payload, params=params)
            except _NOT_SENT as exc:
                failure = exc
                continue
            except httpx.TransportError as exc:
                # The server may have acted on it: only a call that may run twice is retried.
                if not idempotent:
                    raise self._unreachable(exc, attempt) from exc
                failure = exc
                maybe_acted = True
                continue
            if retry_5xx and idempotent and response.is_server_error and attempt < self.retries:
                response.close()
                maybe_acted = True
                continue
            return response, maybe_acted
        assert failure is not None
        raise self._unreachable(failure, self.retries) from failure

    def _unreachable(self, exc: httpx.TransportError, retries: int) -> ServerUnreachable:
        what = "cannot reach" if isinstance(exc, _NOT_SENT) else "no answer from"
        why = str(exc) or type(exc).__name__
        tries = f" (after {retries} retries)" if retries else ""
        return ServerUnreachable(f"{what} stepd at {self.url}{tries}: {why}", url=self.url)


def _segment(value: str) -> str:
    """`value` as one URL path segment (an id or a name never escapes its route)."""
    return quote(value, safe="")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(
            f"the server answered {response.status_code} without a JSON object; "
            f"is {response.request.url} a stepd server?",
            status_code=response.status_code,
            code="bad_answer",
        )
    return body


def _shaped(model: type[BaseModel], value: object, what: str) -> dict[str, Any]:
    """`value` parsed into its shape (stepd.shapes) and given back as the dict it was (keys
    a newer server adds kept, absent keys still absent): an answer that does not fit is a
    ClientError naming the key here, not a KeyError in the caller later."""
    try:
        parsed = model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or None
        raise ClientError(
            f"the server's {what} does not fit {model.__name__}: {where}: {first['msg']}",
            field=where,
        ) from None
    return parsed.model_dump(mode="json", exclude_unset=True)


def _shaped_list(model: type[BaseModel], value: object, what: str) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ClientError(f"the server's {what} is not a list")
    return [_shaped(model, item, what) for item in value]
