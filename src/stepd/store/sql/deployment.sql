-- The deployment's stored settings (store/deployment.py).
-- name: stored_status_events
-- The deployment's stored choices for status events (store/deployment.py), read in the
-- transaction that reports one: every process reports as the store says, at once.
SELECT key, value FROM deployment_settings
WHERE key IN ('status_event_name', 'environment')
