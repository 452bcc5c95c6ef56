-- The statements of store/runs.py on the driver's cursor (see store/queries.py): the hot
-- path of every task (claim, start, finish). Times are bound as SQLAlchemy's DateTime
-- stores them (dbapi.time_param).
--
-- A statement whose text differs by database comes twice, `<name>_sqlite` and
-- `<name>_postgres`; runs.py chooses by the connection. They differ in two ways only:
-- * the queue: SQLite's planner, without statistics, prefers the status index and sorts
--   the whole queue on every claim, so it is told to read the partial index
--   ix_tasks_queue (priority DESC, id), which hands out the queue's head in order;
--   PostgreSQL skips rows another claimer holds (FOR UPDATE SKIP LOCKED).
-- * the heartbeat's time: heartbeats are written and judged by the database's clock,
--   never a host's (a worker whose clock lags, or a reaper whose clock runs ahead, would
--   otherwise see a live attempt as lost). On SQLite that is the machine's clock, read
--   by SQLite and written as SQLAlchemy's DateTime writes it (microseconds; SQLite's %f
--   has milliseconds, hence the '000'); on PostgreSQL the server's clock_timestamp().
--   runs._SQLITE_NOW / _PG_NOW are the same two expressions for SQLAlchemy statements.
--
-- The claimable condition is written with literal values and repeated word for word in
-- has_work and queue_head: the partial index is only used when a query repeats its
-- condition exactly.

-- name: has_work_sqlite
-- A cheap read: whether any task waits to be claimed.
SELECT id FROM tasks INDEXED BY ix_tasks_queue
WHERE status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL AND (not_before IS NULL OR not_before <= :now)
LIMIT 1

-- name: has_work_postgres
SELECT id FROM tasks
WHERE status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL AND (not_before IS NULL OR not_before <= :now)
LIMIT 1

-- name: queue_head_sqlite
-- `scan` queued tasks after the first `skip`, in claim order.
SELECT id, status, semaphores, attempts, type, params, kill_timeout
FROM tasks INDEXED BY ix_tasks_queue
WHERE status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL AND (not_before IS NULL OR not_before <= :now)
ORDER BY priority DESC, id LIMIT :scan OFFSET :skip

-- name: queue_head_postgres
SELECT id, status, semaphores, attempts, type, params, kill_timeout
FROM tasks
WHERE status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL AND (not_before IS NULL OR not_before <= :now)
ORDER BY priority DESC, id LIMIT :scan OFFSET :skip FOR UPDATE SKIP LOCKED

-- name: has_work_typed_sqlite
-- has_work among the task types a worker runs (`types`: a JSON array of names).
SELECT id FROM tasks INDEXED BY ix_tasks_queue
WHERE status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL AND (not_before IS NULL OR not_before <= :now)
    AND type IN (SELECT value FROM json_each(:types))
LIMIT 1

-- name: has_work_typed_postgres
SELECT id FROM tasks
WHERE status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL AND (not_before IS NULL OR not_before <= :now)
    AND type IN (SELECT jsonb_array_elements_text(CAST(:types AS jsonb)))
LIMIT 1

-- name: queue_head_typed_sqlite
-- queue_head among the task types a worker runs (`types`: a JSON array of names).
SELECT id, status, semaphores, attempts, type, params, kill_timeout
FROM tasks INDEXED BY ix_tasks_queue
WHERE status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL AND (not_before IS NULL OR not_before <= :now)
    AND type IN (SELECT value FROM json_each(:types))
ORDER BY priority DESC, id LIMIT :scan OFFSET :skip

-- name: queue_head_typed_postgres
SELECT id, status, semaphores, attempts, type, params, kill_timeout
FROM tasks
WHERE status IN ('ENQUEUED', 'WAIT_MUTEX') AND dispatched IS NULL AND (not_before IS NULL OR not_before <= :now)
    AND type IN (SELECT jsonb_array_elements_text(CAST(:types AS jsonb)))
ORDER BY priority DESC, id LIMIT :scan OFFSET :skip FOR UPDATE OF tasks SKIP LOCKED

-- name: take_and_start_sqlite
-- Claim a task and start it at once (the local executor). A SET expression sees the
-- row's old values, so each time is the bound `now` rather than copied from a column.
UPDATE tasks SET attempts = :attempt, worker = :worker, dispatched = :now, updated = :now,
    heartbeat = strftime('%Y-%m-%d %H:%M:%f', 'now') || '000', started = :now,
    status = 'EXECUTING'
WHERE id = :task_id

-- name: take_and_start_postgres
UPDATE tasks SET attempts = :attempt, worker = :worker, dispatched = :now, updated = :now,
    heartbeat = clock_timestamp(), started = :now, status = 'EXECUTING'
WHERE id = :task_id

-- name: take_sqlite
-- Claim a task for a broker's worker, which starts it (start_*).
UPDATE tasks SET attempts = :attempt, worker = :worker, dispatched = :now, updated = :now,
    heartbeat = strftime('%Y-%m-%d %H:%M:%f', 'now') || '000', status = 'ENQUEUED'
WHERE id = :task_id

-- name: take_postgres
UPDATE tasks SET attempts = :attempt, worker = :worker, dispatched = :now, updated = :now,
    heartbeat = clock_timestamp(), status = 'ENQUEUED'
WHERE id = :task_id

-- name: start_sqlite
-- A dispatched attempt begins on a worker; nothing when it is stale (run or reaped).
UPDATE tasks SET started = :now, heartbeat = strftime('%Y-%m-%d %H:%M:%f', 'now') || '000',
    updated = :now, worker = :worker, status = 'EXECUTING'
WHERE id = :task_id AND attempts = :attempt AND status = 'ENQUEUED' AND dispatched IS NOT NULL

-- name: start_postgres
UPDATE tasks SET started = :now, heartbeat = clock_timestamp(),
    updated = :now, worker = :worker, status = 'EXECUTING'
WHERE id = :task_id AND attempts = :attempt AND status = 'ENQUEUED' AND dispatched IS NOT NULL

-- name: mark_waiting
-- The task's semaphores have no room: it waits for them.
UPDATE tasks SET status = 'WAIT_MUTEX', updated = :now WHERE id = :task_id

-- name: new_attempt
INSERT INTO task_attempts (task_id, attempt, worker, status, started)
VALUES (:task_id, :attempt, :worker, :status, :started)

-- name: start_attempt
UPDATE task_attempts SET started = :now, worker = :worker, status = 'EXECUTING'
WHERE task_id = :task_id AND attempt = :attempt

-- name: started
SELECT type, params, kill_timeout FROM tasks WHERE id = :task_id

-- name: active_task
-- The attempt a worker may end: the one it runs, or one dispatched to it and not started
-- (a broker delivery that failed before `start`). Not a task queued again under the same
-- attempt number (a reaped attempt waiting for its retry, a restarted task): that one is
-- undispatched, and the old worker that learns it was reaped must not end it.
SELECT type, params, author, status, max_retries, stop_requested FROM tasks
WHERE id = :task_id AND attempts = :attempt
    AND (status = 'EXECUTING' OR (status = 'ENQUEUED' AND dispatched IS NOT NULL))

-- name: release
-- Give back every semaphore unit the task holds.
DELETE FROM semaphore_holds WHERE task_id = :task_id

-- name: end_attempt
UPDATE task_attempts SET status = :status, finished = :now, error = :error
WHERE task_id = :task_id AND attempt = :attempt

-- name: retry
-- Queue the task again for its next attempt, not before `not_before`.
UPDATE tasks SET status = 'ENQUEUED', dispatched = NULL, worker = NULL, heartbeat = NULL,
    not_before = :not_before, updated = :now, error = :error, output = :output
WHERE id = :task_id

-- name: end
UPDATE tasks SET status = :status, finished = :now, updated = :now, output = :output,
    error = :error, dispatched = NULL, heartbeat = NULL
WHERE id = :task_id

-- name: link_event
-- The task emitted the event (its status event).
INSERT INTO task_events (task_id, event_seq) VALUES (:task_id, :event_seq)
