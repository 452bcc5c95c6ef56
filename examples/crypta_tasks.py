"""Example task types, as a team would declare them: `stepd serve --tasks examples/crypta_tasks.py`."""

from __future__ import annotations

import logging

from stepd import command_task, http_task, task_type

log = logging.getLogger(__name__)


@task_type("CRYPTA_GRAPH_PREPARE_SOUP_YAML")
def prepare_soup(date: str) -> dict[str, str]:
    """Prepare the soup for one day."""
    log.info("preparing the soup for %s", date)
    return {"date": date, "tables": f"//home/crypta/soup/{date}"}


@task_type("CRYPTA_GRAPH_HUMAN_MATCHING_YAML")
def human_matching(date: str, limit: int = 1000) -> dict[str, object]:
    """Match humans for one day."""
    print(f"matching humans for {date} (limit {limit})")
    return {"date": date, "matched": limit}


# A command: params are substituted into argv items; there is no shell.
echo_date = command_task("ECHO_DATE", argv=["echo", "processing", "{date}"])

# An HTTP call: params go as the JSON body.
notify = http_task("NOTIFY_WEBHOOK", url="http://127.0.0.1:9/hook", method="POST")
