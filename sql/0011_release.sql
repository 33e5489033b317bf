-- 0011_release.sql - a daemon gives back requests it claimed and did not start.
--
-- Two cases: a claim whose answer the connection lost (0009: the daemon never saw the rows) and,
-- now that vmrqd claims ahead of its free workers, the requests still waiting in a daemon that
-- is asked to stop (SIGTERM): running them would make a stop wait for up to claim_ahead more
-- handlers each. Both go back to the queue as they were (the attempt is not counted), or are
-- cancelled when an identical no-duplicate twin was enqueued meanwhile (see 0008). One body for
-- both: vmrq_release_claim() keeps its signature and now names its requests for vmrq_release().

CREATE FUNCTION vmrq_release(p_daemon int, p_ids bigint[], p_why text) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    n int;
BEGIN
    WITH back AS (
        SELECT r.id,
               (SELECT t.id FROM requests t
                 WHERE t.dedupe_key = r.dedupe_key AND t.status IN ('requested', 'waiting') AND t.id <> r.id
                 LIMIT 1) AS twin
          FROM requests r
         WHERE r.id = ANY (p_ids) AND r.status = 'working' AND r.id_daemon = p_daemon
           FOR UPDATE OF r
    )
    UPDATE requests r
       SET status = CASE WHEN back.twin IS NULL THEN 'requested' ELSE 'cancelled' END::request_status,
           error = CASE WHEN back.twin IS NOT NULL
                        THEN format('%s, not run; request %s, the same, is pending', p_why, back.twin) END,
           finished_at = CASE WHEN back.twin IS NOT NULL THEN now() END,
           started_at = NULL, id_daemon = NULL, claim_tag = NULL,
           attempts = greatest(r.attempts - 1, 0), date_changed = now()
      FROM back
     WHERE r.id = back.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION vmrq_release(int, bigint[], text) IS
    'Gives back requests daemon p_daemon claimed and never started (p_why says how: it ends the message of one cancelled for a pending twin). Returns how many.';

CREATE OR REPLACE FUNCTION vmrq_release_claim(p_daemon int, p_tag bigint) RETURNS int
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT vmrq_release(p_daemon,
                        ARRAY(SELECT r.id FROM requests r
                               WHERE r.status = 'working' AND r.id_daemon = p_daemon AND r.claim_tag = p_tag),
                        'claimed when the database connection broke')
$$;
