-- The statements of store/retention.py (see store/queries.py): retention deletes old rows
-- in small batches, each its own short write transaction (docs/operations.md, Retention).

-- name: oldest_unevaluated
-- The creation time of the oldest event the reactor has not evaluated yet (its joins may
-- still look back from there). The literal state lets SQLite use its partial index.
SELECT created FROM events WHERE state = 'NEW' ORDER BY seq LIMIT 1

-- name: event_batch
-- The next events in creation order, after the scan's cursor.
SELECT seq, name, params, state, created, source_object FROM events
WHERE seq > :after ORDER BY seq LIMIT :limit

-- name: tasks_of_events
-- The tasks an event range triggered, with their statuses: an event is kept while one
-- of its tasks is not finished.
SELECT event_seq, status FROM tasks WHERE event_seq BETWEEN :low AND :high

-- name: tasks_of_events_locked
-- The same on PostgreSQL, locked for the batch's transaction: a restart committing
-- meanwhile waits, and the batch keeps the event it sees restarted.
SELECT event_seq, status FROM tasks WHERE event_seq BETWEEN :low AND :high
ORDER BY id FOR UPDATE

-- name: delete_event_param
DELETE FROM event_params
WHERE name = :name AND key = :key AND value = :value AND event_seq = :seq

-- name: delete_event_source
DELETE FROM event_sources WHERE key = :key AND value = :value AND event_seq = :seq

-- name: delete_event_triggers
-- An event's firings (the story's record of what it fired); the tasks they made stay.
DELETE FROM triggers WHERE event_seq = :seq

-- name: delete_event
DELETE FROM events WHERE seq = :seq AND state <> 'NEW'

-- name: delete_requests
-- Request ids older than the events they named, a batch at a time (oldest first).
DELETE FROM event_requests WHERE request_id IN (
    SELECT request_id FROM event_requests WHERE created < :cutoff
    ORDER BY created LIMIT :limit)

-- name: count_requests
SELECT count(*) FROM event_requests WHERE created < :cutoff

-- name: task_batch
-- The next tasks in creation order, after the scan's cursor.
SELECT id, status, created, finished FROM tasks WHERE id > :after ORDER BY id LIMIT :limit

-- name: tasks_in_range
-- A batch's tasks as they are now, in its write transaction (a restart may have
-- made one active since the batch was read). A task of a running backfill reads as
-- unfinished: the backfill counts its tasks by status until it ends.
SELECT t.id, t.status,
       CASE WHEN t.backfill_id IS NOT NULL AND EXISTS (
              SELECT 1 FROM backfills b WHERE b.id = t.backfill_id AND b.state = 'running')
            THEN NULL ELSE t.finished END
FROM tasks t WHERE t.id BETWEEN :low AND :high

-- name: tasks_in_range_locked
-- The same on PostgreSQL, locked until the batch commits (a restart waits for it).
SELECT t.id, t.status,
       CASE WHEN t.backfill_id IS NOT NULL AND EXISTS (
              SELECT 1 FROM backfills b WHERE b.id = t.backfill_id AND b.state = 'running')
            THEN NULL ELSE t.finished END
FROM tasks t WHERE t.id BETWEEN :low AND :high ORDER BY t.id FOR UPDATE OF t

-- name: delete_task_logs
DELETE FROM task_logs WHERE task_id = :id

-- name: delete_task_attempts
DELETE FROM task_attempts WHERE task_id = :id

-- name: delete_task_events
-- The links to the events it emitted (the events themselves age on their own).
DELETE FROM task_events WHERE task_id = :id

-- name: delete_task_holds
DELETE FROM semaphore_holds WHERE task_id = :id

-- name: delete_task
DELETE FROM tasks WHERE id = :id
