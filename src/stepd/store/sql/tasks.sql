-- The statements of store/tasks.py on the driver's cursor (see store/queries.py): the
-- reactor inserts a task per firing.

-- name: insert
-- An ENQUEUED task (its status is bound); `created` is bound once for created and updated.
INSERT INTO tasks (type, params, status, author, priority, semaphores, kill_timeout,
                   max_retries, attempts, config_seq, config_version, event_seq, created,
                   updated)
VALUES (:type, :params, :status, :author, :priority, :semaphores, :kill_timeout,
        :max_retries, 0, :config_seq, :config_version, :event_seq, :created, :created)

-- name: delete_unfired
-- A task made in the reactor's transaction whose firing turned out to be a repeat.
DELETE FROM tasks WHERE id = :task_id
