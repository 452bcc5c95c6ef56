"""`stepd prune`: one round of retention now, on the store at --db (as `stepd backup` and
`stepd migrate` work on the store itself), or with --dry-run what it would delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from stepd.cli.common import DEFAULT_DB, DbOption, err, fail, load_settings, setting
from stepd.cli.render import JsonOption, console, print_json
from stepd.errors import StepdError

if TYPE_CHECKING:
    from stepd.services.retention import Report, Tally

_ROWS = (  # (tally field, what it counts, which cutoff applies)
    ("events", "events", "events"),
    ("params", "their params index rows", "events"),
    ("triggers", "their triggers (firings)", "events"),
    ("requests", "request ids", "events"),
    ("tasks", "finished tasks", "tasks"),
    ("attempts", "their attempts", "tasks"),
    ("logs", "log chunks", "logs"),
    ("kept_events", "old events kept: their task is not finished", "events"),
)
_DRY_LOGS = "finished tasks whose logs go (the tasks stay)"


def prune(
    db: DbOption = DEFAULT_DB,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    retention: Annotated[
        str | None,
        setting("retention", "--retention", help_prefix="For this run instead of the stored."),
    ] = None,
    task_retention: Annotated[
        str | None,
        setting("task_retention", "--task-retention", help_prefix="For this run."),
    ] = None,
    log_retention: Annotated[
        str | None, setting("log_retention", "--log-retention", help_prefix="For this run.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Delete what is past the deployment's retention now, in small batches (servers keep
    serving meanwhile), or show it with --dry-run: counts per kind and the cutoffs.

    The retention is the deployment's stored one (`stepd settings set retention 90d`),
    else STEPD_RETENTION; --retention (and the other two) replace it for this run only.
    """
    from stepd.domain.retention import Policy
    from stepd.services.retention import RetentionService
    from stepd.store import open_store

    settings = load_settings(
        database_url=db,
        retention=retention,
        task_retention=task_retention,
        log_retention=log_retention,
    )
    given = (retention, task_retention, log_retention)
    try:
        store = open_store(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        try:
            service = RetentionService(
                store,
                own=(settings.retention, settings.task_retention, settings.log_retention),
                batch_rows=settings.retention_batch_rows,
            )
            policy = Policy.of(*given) if any(v is not None for v in given) else None
            with err.status("pruning...") as status:

                def progress(tally: Tally) -> None:
                    status.update(
                        f"{'counting' if dry_run else 'deleted'}: {tally.events} events, "
                        f"{tally.tasks} tasks, {tally.logs} logs"
                    )

                report = service.run(apply=not dry_run, policy=policy, progress=progress)
        finally:
            store.close()
    except StepdError as exc:
        raise fail(exc.message) from exc
    if as_json:
        print_json(report.to_json())
        return
    _print(report)


def _print(report: Report) -> None:
    if report.cutoffs is None:
        err.print(
            "retention is off: nothing is deleted. Set it for the deployment with "
            "`stepd settings set retention 90d`, or give --retention for one run.",
            highlight=False,
        )
        return
    shown = report.to_json()
    cutoffs = shown["cutoffs"]
    assert isinstance(cutoffs, dict)
    table = Table(box=None, header_style="bold")
    for column in ("kind", "would delete" if report.dry_run else "deleted", "older than"):
        table.add_column(column, overflow="fold")
    tally = report.tally.as_dict()
    for key, what, cutoff in _ROWS:
        if report.dry_run and key in ("triggers", "attempts"):
            count = "(not counted)"
        else:
            count = str(tally[key])
        if report.dry_run and key == "logs":
            what = _DRY_LOGS
        table.add_row(what, count, cutoffs[cutoff] or "(kept)")
    console().print(table)
    for name, at in cutoffs["kept_longer"].items():
        err.print(
            f"events {name!r} are kept from {at} on: a config joins them within its window",
            highlight=False,
            markup=False,
        )
    verb = "counted" if report.dry_run else "pruned"
    err.print(f"{verb} in {report.seconds:.1f} s", highlight=False)
