-- domains.sql - the rule of every statement that writes domains.status.
--
-- Three writers set a domain's status: the event sink (an event's status, as it arrived:
-- backend/events.c), the completion of a request (its worker's reading after the operation:
-- vmrq_complete()) and refresh_vms (a listing of the node: backend/handlers_domain.c). Each
-- observed the hypervisor at some moment, and the latest observation must win whatever order
-- the writes commit in. The time of the observation lives in the row (domains.status_seen): a
-- writer that has waited for the row reads its newest version, and each writer sets status only
-- if its own observation is not older. (Looking for a newer event in domain_events instead lost:
-- a statement that waited for the row could not see the event committed meanwhile.)

-- Whether an observation made at p_seen may replace a status observed at p_row_seen (NULL:
-- never observed). Inlined by the planner into the statements that call it.
CREATE OR REPLACE FUNCTION vmrq_status_not_older(p_row_seen timestamptz, p_seen timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(p_row_seen, '-infinity') <= p_seen
$$;
REVOKE ALL ON FUNCTION vmrq_status_not_older(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_status_not_older(timestamptz, timestamptz) TO vmrq_daemon;
