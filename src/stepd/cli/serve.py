"""`stepd serve`: the API (and, as they land, the reactor and runner) in one process."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from stepd.cli.common import DEFAULT_DB, DbOption, fail
from stepd.errors import StepdError
from stepd.settings import Settings


def serve(
    db: DbOption = DEFAULT_DB,
    host: Annotated[
        str, typer.Option(envvar="STEPD_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="STEPD_PORT", help="Port to listen on.")] = 8080,
    private_reads: Annotated[
        bool,
        typer.Option(
            "--private-reads", envvar="STEPD_PRIVATE_READS", help="Require a token for reads too."
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(envvar="STEPD_LOG_LEVEL")] = "info",
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", envvar="STEPD_ACCESS_LOG")
    ] = True,
) -> None:
    """Run the stepd server: HTTP API on the store at --db (migrated at start)."""
    import uvicorn

    from stepd.api.app import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_env(database_url=db, host=host, port=port, private_reads=private_reads)
    try:
        app = create_app(settings)
    except StepdError as exc:
        raise fail(exc.message) from exc
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower(), access_log=access_log)
