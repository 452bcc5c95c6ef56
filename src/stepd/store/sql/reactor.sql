-- The reactor's own statements (stepd/reactor.py), on the driver's cursor: each item of
-- a batch (a firing, a rejection) runs inside a savepoint, so that one that fails is
-- undone alone and the batch goes on (see Reactor._isolated).

-- name: savepoint
SAVEPOINT stepd_item

-- name: rollback_to_savepoint
ROLLBACK TO SAVEPOINT stepd_item

-- name: release_savepoint
RELEASE SAVEPOINT stepd_item
