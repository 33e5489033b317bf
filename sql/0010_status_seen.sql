-- 0010_status_seen.sql - when vmrqd saw the state that domains.status records.
--
-- Three writers set a domain's status: the event sink (an event's status, as it arrived), the
-- completion of a request (its worker's reading after the operation) and refresh_vms (a
-- listing of the node). Each observed the hypervisor at some moment, and the latest observation
-- must win whatever order the writes commit in. The completion used to look for a newer event in
-- domain_events; but when the sink's batch held the domain's row, the completion's statement,
-- begun before that batch committed, waited for the row and then could not see the event it had
-- waited for, and wrote its older reading over it (a guest shut down through its agent stayed
-- 'shutting_down'). The time of the observation now lives in the row itself: a writer that has
-- waited for the row reads its newest version, and each writer sets status only if its own
-- observation is not older than status_seen. NULL: nobody has observed it yet.

ALTER TABLE domains ADD COLUMN status_seen timestamptz;
COMMENT ON COLUMN domains.status_seen IS
    'When vmrqd observed the state that status records (an event''s arrival, a worker''s or a refresh''s reading, by vmrqd''s clock); an older observation does not overwrite it.';
