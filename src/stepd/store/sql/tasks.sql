-- The statements of store/tasks.py on the driver's cursor (see store/queries.py): the
-- reactor inserts a task per firing.

-- name: insert
-- An ENQUEUED task (its status is bound); `created` is bound once for created and updated.
-- `manual` and `backfill_id` say how a task no event fired was made (NULL for the rest).
INSERT INTO tasks (type, params, status, author, priority, semaphores, kill_timeout,
                   max_retries, attempts, config_seq, config_version, event_seq, created,
                   updated, manual, backfill_id)
VALUES (:type, :params, :status, :author, :priority, :semaphores, :kill_timeout,
        :max_retries, 0, :config_seq, :config_version, :event_seq, :created, :created,
        :manual, :backfill_id)

-- name: delete_unfired
-- A task made in the reactor's transaction whose firing turned out to be a repeat.
DELETE FROM tasks WHERE id = :task_id
