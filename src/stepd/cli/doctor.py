"""`stepd doctor`: the health checks of /healthz, run from this machine, with remedies.

Locally (the default) it opens the store at --db itself, so it answers where a server
does not start: the database down, the schema behind or ahead of this release, the
broker unreachable. With --url it shows a running server's /healthz instead, as that
server sees its deployment. Exit 0 when every check is ok, 1 otherwise (a script or a
deploy step can gate on it).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from stepd.cli.common import DEFAULT_DB, DEFAULT_URL, DbOption, UrlOption, fail, load_settings, out
from stepd.errors import SchemaTooNew, StoreUnavailable

if TYPE_CHECKING:  # (imported where used: `stepd --help` need not load the store)
    from stepd.services.health import Check, Health
    from stepd.store.engine import Store

_STYLE = {"ok": "green", "degraded": "yellow", "down": "bold red"}


def doctor(
    db: DbOption = DEFAULT_DB,
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="Also check this Celery broker (default: STEPD_BROKER_URL, when set).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Show the /healthz of the server at STEPD_URL instead (implied by --url).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the store, its schema, the reactor, the broker and the disk; say what to do."""
    from stepd.store.engine import backend_of

    settings = load_settings(database_url=db, broker_url=broker, url=url)
    if remote or url is not None:
        body = _remote(settings.url)
    else:
        health = _local(
            settings.database_url, settings.broker_url, settings.heartbeat_timeout_seconds
        )
        body = health.as_json(backend_of(settings.database_url))
    if as_json:
        out.print_json(json.dumps(body))
    else:
        _render(body)
    if body.get("status") != "ok":
        raise typer.Exit(1)


def _local(database_url: str, broker_url: str | None, heartbeat_timeout: float) -> Health:
    from stepd.services.fleet import FleetService
    from stepd.services.health import Health, HealthService
    from stepd.store import open_store

    try:  # (not create=True: asking would make an empty database)
        store = open_store(database_url, migrate=False, create=False)
    except StoreUnavailable as exc:
        return Health(checks=[_store_down(exc)])
    try:
        fleet = FleetService(store, heartbeat_timeout_seconds=heartbeat_timeout)
        service = HealthService(store, broker_url=broker_url, fleet=fleet)
        stored = service.check_store()
        if stored.status == "down" and "problem" not in stored.details:
            return Health(checks=[stored])
        schema = _schema(store)
        if schema.status != "ok":  # the other checks read tables this schema may lack
            broker = [service.check_broker(broker_url)] if broker_url else []
            return Health(checks=[stored, schema, *broker])
        return Health(checks=[*service.run().checks, schema])
    finally:
        store.close()


def _schema(store: Store) -> Check:
    from stepd.services.health import Check
    from stepd.store import migrate as migrations

    try:
        state = migrations.check(store)
    except SchemaTooNew as exc:
        return Check(
            name="schema",
            status="down",
            message=exc.message,
            remedy="run the newer stepd this store was migrated by",
        )
    except StoreUnavailable as exc:
        return _store_down(exc)
    if state.up_to_date:
        return Check(name="schema", status="ok", message=f"at revision {state.head}")
    return Check(
        name="schema",
        status="down" if state.current is None else "degraded",
        message=f"at revision {state.current or 'none (an empty database)'}; "
        f"this stepd needs {state.head}",
        remedy="run `stepd migrate` once (servers also migrate as they start)",
    )


def _store_down(exc: StoreUnavailable) -> Check:
    from stepd.services.health import Check

    return Check(
        name="store",
        status="down",
        message=exc.message,
        remedy="start the database or fix --db (STEPD_DATABASE_URL)",
    )


def _remote(url: str) -> dict[str, Any]:
    try:
        answer = httpx.get(f"{url.rstrip('/')}/healthz", timeout=30)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {url}: {exc}") from exc
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body:
        raise fail(f"{url}/healthz answered {answer.status_code}, not stepd's health")
    return body


def _render(body: dict[str, Any]) -> None:
    status = str(body.get("status"))
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("check")
    table.add_column("status")
    table.add_column("message", overflow="fold")
    remedies: list[tuple[str, str]] = []
    checks = body.get("checks") or {}
    for name, check in checks.items():
        check_status = str(check.get("status"))
        style = _STYLE.get(check_status, "")
        table.add_row(name, f"[{style}]{check_status}[/]", escape(str(check.get("message", ""))))
        if check.get("remedy"):
            remedies.append((name, str(check["remedy"])))
    out.print(table)
    for name, remedy in remedies:
        out.print(f"[bold]{name}[/]: {escape(remedy)}", soft_wrap=True, highlight=False)
    style = _STYLE.get(status, "")
    out.print(f"stepd is [{style}]{status}[/] ({body.get('store')})", highlight=False)
