-- The SQLite writer's statements for events (store/events.py: EventGroup, the request
-- ids), on the driver's cursor (see store/queries.py). PostgreSQL stores events through
-- SQLAlchemy Core (RETURNING the seqs, stamped by statement_timestamp()).

-- name: next_seq_sqlite
-- AUTOINCREMENT's own rule: past the largest seq ever handed out and the largest present.
SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
           coalesce((SELECT max(seq) FROM events), 0)) + 1

-- name: insert_event
-- An event with the seq its group handed out (the writer holds SQLite's write lock).
INSERT INTO events (seq, name, params, state, created, author, request_id,
                    source_type, source, source_object)
VALUES (:seq, :name, :params, :state, :created, :author, :request_id,
        :source_type, :source, :source_object)

-- name: insert_param
-- One entry of the param index: a param's value as index_value keeps it.
INSERT INTO event_params (name, key, value, event_seq) VALUES (:name, :key, :value, :event_seq)

-- name: insert_source
-- One entry of the object-source index.
INSERT INTO event_sources (key, value, event_seq) VALUES (:key, :value, :event_seq)

-- name: find_request
SELECT event_ids, digest FROM event_requests WHERE request_id = :request_id

-- name: record_request
INSERT INTO event_requests (request_id, event_ids, digest, created)
VALUES (:request_id, :event_ids, :digest, :created)
