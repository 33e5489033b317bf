-- 0008_retry_twin.sql - recovery does not put back a request whose twin is pending.
--
-- A no-duplicate command (force_shutdown, refresh_vms, cleanup, ...) may be enqueued again while
-- an identical request is working: requests_dedupe covers pending requests only. If the working
-- one then goes back to the queue for a retry, the two collide in requests_dedupe, and the
-- statement that moves it fails as a whole. For vmrq_recover() that meant no claim of any dead
-- daemon was taken back until the twin had run; a twin on the same domain never runs while the
-- domain has a working request, so recovery stopped for good. The twin does what the retry would:
-- the request fails instead, naming it. (vmrqd's completion statement, in backend/claim.c, does
-- the same for a retryable failure.) The rest of the function is 0002's.

CREATE OR REPLACE FUNCTION vmrq_recover(p_lease interval) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    n int;
BEGIN
    WITH lost AS (
        SELECT r.id, d.id AS daemon, d.hostname, d.pid,
               (SELECT t.id FROM requests t
                 WHERE r.retry > 0 AND t.dedupe_key = r.dedupe_key
                   AND t.status IN ('requested', 'waiting') AND t.id <> r.id
                 LIMIT 1) AS twin
          FROM requests r
          LEFT JOIN daemons d ON d.id = r.id_daemon
         WHERE r.status = 'working'
           AND (d.id IS NULL OR d.stopped_at IS NOT NULL OR d.heartbeat_at < now() - p_lease)
           FOR UPDATE OF r SKIP LOCKED
    )
    UPDATE requests r
       SET status = CASE WHEN r.retry > 0 AND lost.twin IS NULL THEN 'requested' ELSE 'failed' END::request_status,
           retry = greatest(r.retry - 1, 0),
           error = format('vmrqd %s (%s, pid %s) stopped while running it%s',
                          coalesce(lost.daemon::text, '?'), coalesce(lost.hostname, 'unknown host'),
                          coalesce(lost.pid::text, '?'),
                          CASE WHEN lost.twin IS NOT NULL
                               THEN format('; not retried: request %s, the same, is pending', lost.twin)
                               WHEN r.retry > 0 THEN '; retrying' ELSE '' END),
           finished_at = CASE WHEN r.retry > 0 AND lost.twin IS NULL THEN NULL ELSE now() END,
           id_daemon = NULL
      FROM lost
     WHERE r.id = lost.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
