-- The statements of store/triggers.py on the driver's cursor (see store/queries.py).

-- name: insert
-- Record a firing. The unique key (config, event, binding) makes a second evaluation of
-- the same event insert nothing.
INSERT INTO triggers (config_seq, config_version, event_seq, binding_hash, binding,
                      dep_events, task_id, error, created)
VALUES (:config_seq, :config_version, :event_seq, :binding_hash, :binding,
        :dep_events, :task_id, :error, :created)
ON CONFLICT (config_seq, event_seq, binding_hash) DO NOTHING
