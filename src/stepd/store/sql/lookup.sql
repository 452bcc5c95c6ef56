-- The reactor's reads and marks of events (store/lookup.py), on the driver's cursor:
-- each runs per evaluated event or per batch (see store/queries.py).

-- name: find_by_param
-- The events of a name with a param's value up to a seq. Only the index is walked and
-- each entry's event joined by its key: the other params and the state are checked in
-- Python (see StoredEvents.newest for why).
SELECT e.seq, e.name, e.params, e.created, e.state FROM event_params p
LEFT JOIN events e ON e.seq = p.event_seq
WHERE p.name = :name AND p.key = :key AND p.value = :value AND p.event_seq <= :below

-- name: find_by_param_limited
-- find_by_param, one row past a scan budget at most (the limit).
SELECT e.seq, e.name, e.params, e.created, e.state FROM event_params p
LEFT JOIN events e ON e.seq = p.event_seq
WHERE p.name = :name AND p.key = :key AND p.value = :value AND p.event_seq <= :below
LIMIT :limit

-- name: find_by_name
SELECT e.seq, e.name, e.params, e.created, e.state FROM events e
WHERE e.name = :name AND e.seq <= :below

-- name: find_by_name_limited
SELECT e.seq, e.name, e.params, e.created, e.state FROM events e
WHERE e.name = :name AND e.seq <= :below
LIMIT :limit

-- name: newest_by_param
-- A page of the events of a name with a param's value, newest first, up to a seq. The
-- last column is the index entry's seq, which the next page starts below.
SELECT e.seq, e.name, e.params, e.created, e.state, s.event_seq FROM
  (SELECT p.event_seq FROM event_params p
   WHERE p.name = :name AND p.key = :key AND p.value = :value AND p.event_seq <= :below
   ORDER BY p.event_seq DESC LIMIT :page) AS s
LEFT JOIN events e ON e.seq = s.event_seq ORDER BY s.event_seq DESC

-- name: newest_by_name
SELECT e.seq, e.name, e.params, e.created, e.state, e.seq FROM events e
WHERE e.name = :name AND e.seq <= :below ORDER BY e.seq DESC LIMIT :page

-- name: estimate
-- A value's index entries, counted up to the cap, to choose the param a lookup leads with.
SELECT count(*) FROM (SELECT 1 FROM event_params WHERE name = :name AND key = :key
                      AND value = :value LIMIT :cap) AS counted

-- name: new_events
-- The oldest NEW events, in seq order: a StoredEvent's columns.
SELECT e.seq, e.name, e.params, e.created FROM events e
WHERE e.state = 'NEW' ORDER BY e.seq LIMIT :limit

-- name: newest_processed_sqlite
-- SQLite indexes only the NEW and the REJECTED events (migration 0006). There every
-- PROCESSED event lies below the oldest NEW one: writers take turns, seqs grow with
-- each insert, and a batch marks every NEW event of its range, oldest first. So the
-- newest PROCESSED is found walking down from there, past the few REJECTED.
SELECT seq FROM events WHERE state = 'PROCESSED' AND seq < coalesce(
  (SELECT min(seq) FROM events WHERE state = 'NEW'), 9223372036854775807)
ORDER BY seq DESC LIMIT 1

-- name: newest_processed
SELECT max(seq) FROM events WHERE state = 'PROCESSED'

-- name: mark_range_processed
UPDATE events SET state = 'PROCESSED' WHERE seq BETWEEN :first AND :last AND state = 'NEW'

-- name: count_new
SELECT count(*) FROM events WHERE seq BETWEEN :first AND :last AND state = 'NEW'

-- name: config_generation
SELECT generation FROM config_generation
