-- The reads behind GET /metrics (store/metrics.py), each answered by an index; on the
-- driver's cursor, in one read transaction (see store/queries.py).

-- name: events_stored
-- Every event ever stored: the primary key's last entry, not count(*).
SELECT max(seq) FROM events

-- name: events_in_state
-- A range of ix_events_state_seq (NEW and REJECTED are small next to the history).
SELECT count(*) FROM events WHERE state = :state

-- name: oldest_new_event
SELECT created FROM events WHERE state = 'NEW' ORDER BY seq LIMIT 1

-- name: active_tasks
SELECT status, count(*) FROM tasks
WHERE status IN ('ENQUEUED', 'WAIT_MUTEX', 'EXECUTING') GROUP BY status

-- name: oldest_waiting_task
-- The oldest waiting task is the one with the lowest id: ids are handed out in creation
-- order. min() over the two status ranges of the index, then one row by key. `id + 0`:
-- PostgreSQL would turn a plain min(id) into a walk of the primary key from its start,
-- past every ended task (11 ms at 100,000 tasks against 0.3).
SELECT created, not_before FROM tasks WHERE id =
  (SELECT min(id + 0) FROM tasks WHERE status IN ('ENQUEUED', 'WAIT_MUTEX'))

-- name: last_task
SELECT max(id) FROM tasks

-- name: recent_tasks_sqlite
-- A range of the primary key. SQLite's planner, for the GROUP BY, would rather scan the
-- whole status index (every task ever made: 2.6 ms at 100,000 against 1.3).
SELECT status, count(*) FROM tasks NOT INDEXED WHERE id > :after GROUP BY status

-- name: recent_tasks
SELECT status, count(*) FROM tasks WHERE id > :after GROUP BY status

-- name: semaphores
SELECT s.name, s.capacity,
       (SELECT coalesce(sum(h.weight), 0) FROM semaphore_holds h WHERE h.name = s.name)
FROM semaphores s ORDER BY s.name LIMIT :limit

-- name: trigger_errors
-- A trigger has no task exactly when its firing failed (and its error says why).
SELECT count(*) FROM triggers WHERE task_id IS NULL

-- name: configs
-- Enabled: those that fire, so not the paused ones (configs.disabled).
SELECT count(*), coalesce(sum(CASE WHEN enabled AND NOT disabled THEN 1 ELSE 0 END), 0)
FROM configs

-- The counts of stored facts (store/tally.py): each a range of a primary key, from the
-- last settled key to the newest, so a scrape reads only what is new since the last one.

-- name: tally_events
-- Events stored after one seq up to another, by source type; min(seq) orders the label values by
-- first appearance, the same on every server.
SELECT source_type, count(*), min(seq) FROM events
WHERE seq > :after AND seq <= :upto GROUP BY source_type

-- name: tally_finished
-- The status events of finished tasks in a range of seqs: every terminal status stores
-- exactly one, linked to its task, in the transaction that ends the task. The attempt
-- is the task's last one (the one that ended it).
SELECT e.params, a.started, a.finished FROM events e
JOIN task_events te ON te.event_seq = e.seq
JOIN tasks t ON t.id = te.task_id
LEFT JOIN task_attempts a ON a.task_id = t.id AND a.attempt = t.attempts
WHERE e.seq > :after AND e.seq <= :upto AND e.source_type = 'task'
ORDER BY e.seq

-- name: last_trigger
SELECT max(id) FROM triggers

-- name: tally_firings
-- Firings recorded in a range of trigger ids: with a task, or with the error that made none;
-- with the triggering event's time for the firings that made a task.
SELECT tr.task_id, tr.created, e.created FROM triggers tr
JOIN events e ON e.seq = tr.event_seq
WHERE tr.id > :after AND tr.id <= :upto
