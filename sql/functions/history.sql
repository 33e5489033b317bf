-- history.sql - forgetting the history: finished requests and old domain events, deleted by
-- vmrqd's `cleanup` handler in batches (one short transaction each, so that a cleanup of a
-- million rows holds no lock for long).

-- Deletes up to p_limit finished requests (done, failed, cancelled) that finished more than
-- p_older_ms milliseconds ago, oldest first; returns how many. SECURITY DEFINER: vmrqd may delete
-- history, never a pending or working request, so it has no DELETE on requests.
CREATE OR REPLACE FUNCTION vmrq_forget_requests(p_older_ms bigint, p_limit int) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    n int;
BEGIN
    DELETE FROM requests WHERE id IN (SELECT id FROM requests
                                       WHERE status IN ('done', 'failed', 'cancelled')
                                         AND finished_at < now() - p_older_ms * interval '1 millisecond'
                                       ORDER BY finished_at LIMIT p_limit);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
REVOKE ALL ON FUNCTION vmrq_forget_requests(bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_forget_requests(bigint, int) TO vmrq_daemon;

-- The same for domain events older than p_older_ms (appended in time order: oldest ids first).
-- SECURITY DEFINER: likewise, vmrqd has no DELETE on domain_events.
CREATE OR REPLACE FUNCTION vmrq_forget_events(p_older_ms bigint, p_limit int) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    n int;
BEGIN
    DELETE FROM domain_events WHERE id IN (SELECT id FROM domain_events
                                            WHERE at < now() - p_older_ms * interval '1 millisecond'
                                            ORDER BY id LIMIT p_limit);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
REVOKE ALL ON FUNCTION vmrq_forget_events(bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_forget_events(bigint, int) TO vmrq_daemon;
