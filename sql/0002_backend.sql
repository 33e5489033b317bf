-- 0002_backend.sql - what vmrqd needs: its registry (daemons) for crash recovery, the claim's
-- bookkeeping on requests, the indexes of its queries, and dependency resolution.

-- Every vmrqd that ever ran. A live one refreshes heartbeat_at every lease/3; one whose heartbeat
-- is older than its lease (or that stopped) holds no claim any more (see vmrq_recover()).
CREATE TABLE daemons (
    id           serial PRIMARY KEY,
    node         text NOT NULL,
    hostname     text NOT NULL,
    pid          int NOT NULL,
    version      text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz
);
COMMENT ON TABLE daemons IS 'vmrqd processes, live and past; requests.id_daemon names the claimant.';

ALTER TABLE requests
    ADD COLUMN id_daemon int,
    ADD COLUMN attempts int NOT NULL DEFAULT 0;
COMMENT ON COLUMN requests.id_daemon IS 'The vmrqd (daemons.id) that claimed the request.';
COMMENT ON COLUMN requests.attempts IS 'How many times a vmrqd has started it (retries included).';

-- Per-domain serialization: is a request of this domain working, or an older one due?
CREATE INDEX requests_domain_active ON requests (id_domain, id)
    WHERE status IN ('requested', 'working') AND id_domain IS NOT NULL;
-- The daemon's timer: the earliest scheduled request.
CREATE INDEX requests_scheduled ON requests (at_time) WHERE status = 'requested' AND at_time IS NOT NULL;
-- Dependency resolution and recovery look only at these few rows.
CREATE INDEX requests_waiting ON requests (id) WHERE status = 'waiting';
CREATE INDEX requests_working ON requests (id_daemon) WHERE status = 'working';
-- cleanup deletes the oldest finished rows first.
CREATE INDEX requests_finished ON requests (finished_at) WHERE status IN ('done', 'failed', 'cancelled');

-- Moves waiting requests whose parents have finished: to requested, or to failed when the
-- after_request_ok parent did not succeed (a parent deleted by cleanup had finished; its
-- outcome is unknown, which does not satisfy after_request_ok). Returns how many moved; a
-- failure can unblock further children, so callers repeat until 0.
CREATE FUNCTION vmrq_resolve_waiting() RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    n int;
BEGIN
    WITH ready AS (
        SELECT c.id,
               ok.id AS ok_id,
               CASE WHEN c.after_request_ok IS NULL THEN NULL
                    WHEN ok.id IS NULL THEN 'no longer exists'
                    WHEN ok.status <> 'done' THEN ok.status::text END AS ok_problem
          FROM requests c
          LEFT JOIN requests a ON a.id = c.after_request
          LEFT JOIN requests ok ON ok.id = c.after_request_ok
         WHERE c.status = 'waiting'
           AND (c.after_request IS NULL OR a.id IS NULL OR a.status IN ('done', 'failed', 'cancelled'))
           AND (c.after_request_ok IS NULL OR ok.id IS NULL OR ok.status IN ('done', 'failed', 'cancelled'))
           FOR UPDATE OF c SKIP LOCKED
    )
    UPDATE requests r
       SET status = CASE WHEN ready.ok_problem IS NULL THEN 'requested' ELSE 'failed' END::request_status,
           error = CASE WHEN ready.ok_problem IS NOT NULL
                        THEN format('request %s it depends on (after_request_ok) %s',
                                    r.after_request_ok, ready.ok_problem) END,
           finished_at = CASE WHEN ready.ok_problem IS NOT NULL THEN now() END
      FROM ready
     WHERE r.id = ready.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Takes back the claims of daemons that stopped or whose heartbeat is older than p_lease: each
-- such request goes back to requested if it has retries left, else fails saying which daemon
-- died. Returns how many were taken back.
CREATE FUNCTION vmrq_recover(p_lease interval) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    n int;
BEGIN
    WITH lost AS (
        SELECT r.id, d.id AS daemon, d.hostname, d.pid
          FROM requests r
          LEFT JOIN daemons d ON d.id = r.id_daemon
         WHERE r.status = 'working'
           AND (d.id IS NULL OR d.stopped_at IS NOT NULL OR d.heartbeat_at < now() - p_lease)
           FOR UPDATE OF r SKIP LOCKED
    )
    UPDATE requests r
       SET status = CASE WHEN r.retry > 0 THEN 'requested' ELSE 'failed' END::request_status,
           retry = greatest(r.retry - 1, 0),
           error = format('vmrqd %s (%s, pid %s) stopped while running it%s',
                          coalesce(lost.daemon::text, '?'), coalesce(lost.hostname, 'unknown host'),
                          coalesce(lost.pid::text, '?'),
                          CASE WHEN r.retry > 0 THEN '; retrying' ELSE '' END),
           finished_at = CASE WHEN r.retry > 0 THEN NULL ELSE now() END,
           id_daemon = NULL
      FROM lost
     WHERE r.id = lost.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
