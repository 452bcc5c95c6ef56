"""The Celery dispatcher with its broker down: what it claimed goes back to the queue.

A claim is committed before its message is sent; when the broker cannot take the batch,
every claimed task that was not sent is given back (ENQUEUED, not dispatched, its
attempt count as before), so that the next round, or another server, dispatches it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from stepd.runner.celery_app import make_celery
from stepd.runner.dispatcher import Dispatcher
from stepd.store import Store
from stepd.store import tasks as task_store
from stepd.store.runs import StatusEvents
from stepd.store.schema import tasks
from stepd.timeutil import utcnow

DEAD_BROKER = "amqp://guest:guest@127.0.0.1:9//"  # nothing listens on port 9


def test_a_batch_the_broker_refuses_is_given_back(store: Store) -> None:
    created = utcnow() - timedelta(seconds=1)
    with store.write() as conn:
        ids = [
            task_store.insert_task(
                conn, task_store.NewTask(type="T", params={"n": n}, author="a", created=created)
            )
            for n in range(3)
        ]
    app = make_celery(DEAD_BROKER, queue="stepd-nowhere")
    # Fail fast: the default retries a dead broker for seconds per message.
    app.conf.broker_connection_timeout = 0.5
    app.conf.broker_connection_max_retries = 0
    app.conf.task_publish_retry = False
    dispatcher = Dispatcher(store, app, StatusEvents(name="taskEvent", environment="testing"))
    with pytest.raises(Exception):  # noqa: B017 (kombu's, whichever the transport raises)
        dispatcher.dispatch_once()
    with store.read() as conn:
        rows = conn.execute(
            select(tasks.c.id, tasks.c.status, tasks.c.dispatched, tasks.c.attempts)
            .where(tasks.c.id.in_(ids))
            .order_by(tasks.c.id)
        ).all()
    assert [(r.status, r.dispatched, r.attempts) for r in rows] == [("ENQUEUED", None, 0)] * 3
    app.close()
