-- 0009_claim_tag.sql - a claim whose answer was lost can be taken back by its own daemon.
--
-- A claim commits, then sends its rows. If the connection breaks in between (a database
-- restart, a network cut), the requests are `working` under a vmrqd that never saw them. That
-- vmrqd is alive and keeps its heartbeat, so vmrq_recover() never takes them back: they stayed
-- working for good, and each blocked its domain. The claimer cannot name requests it never
-- received, but it knows the claim it sent: each claim now carries a tag chosen by the claimer
-- (unique within its daemon), stamped on the rows it takes, and after reconnecting the claimer
-- hands back what that tag took, with vmrq_release_claim(). The rest of vmrq_claim() is 0006's;
-- a new parameter means a new function, so its whole body is restated here.

ALTER TABLE requests ADD COLUMN claim_tag bigint;
COMMENT ON COLUMN requests.claim_tag IS 'The claim that took it, as tagged by the claiming vmrqd.';

DROP FUNCTION vmrq_claim(int, text, text[], int, text[], int, text[], int, text[], int);

CREATE FUNCTION vmrq_claim(p_daemon int, p_node text,
                           p_inline text[], p_inline_limit int, p_important text[], p_important_limit int,
                           p_secondary text[], p_secondary_limit int, p_long text[], p_long_limit int, p_tag bigint)
RETURNS TABLE (id bigint, command text, args text, id_domain int, uid int, retry int, attempts int,
               inline boolean, class text)
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET enable_seqscan = off SET enable_bitmapscan = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH lanes (commands, lim) AS (
            VALUES (p_inline, p_inline_limit), (p_important, p_important_limit),
                   (p_secondary, p_secondary_limit), (p_long, p_long_limit)),
         picked AS (
            SELECT c.id
              FROM lanes l
             CROSS JOIN LATERAL (
                   -- runnable: due; no request of its domain working, nor an older one due;
                   -- its domain on this node (or a refresh_vms naming this node, or no node)
                   SELECT q.id FROM requests q
                    WHERE q.status = 'requested' AND (q.at_time IS NULL OR q.at_time <= now())
                      AND array_position(l.commands, q.command) IS NOT NULL
                      AND (q.id_domain IS NULL
                           OR (NOT EXISTS (SELECT 1 FROM requests o
                                            WHERE o.id_domain = q.id_domain AND o.status = 'working')
                               AND NOT EXISTS (SELECT 1 FROM requests o
                                                WHERE o.id_domain = q.id_domain AND o.id < q.id
                                                  AND o.status = 'requested'
                                                  AND (o.at_time IS NULL OR o.at_time <= now()))))
                      AND coalesce((SELECT n.name FROM domains d JOIN nodes n ON n.id = d.id_node
                                     WHERE d.id = q.id_domain),
                                   CASE WHEN q.command = 'refresh_vms' THEN q.args->>'node' END,
                                   p_node) = p_node
                    ORDER BY q.priority DESC, q.id
                    LIMIT l.lim
                      FOR UPDATE OF q SKIP LOCKED) c
             WHERE l.lim > 0
               AND EXISTS (SELECT 1 FROM unnest(l.commands) k(c)
                            CROSS JOIN LATERAL (SELECT 1 FROM requests p
                                                 WHERE p.command = k.c AND p.command IS NOT NULL
                                                   AND p.status = 'requested' LIMIT 1) x)),
         claimed AS (
            UPDATE requests r
               SET status = 'working', started_at = clock_timestamp(), id_daemon = p_daemon,
                   attempts = r.attempts + 1, date_changed = clock_timestamp(), claim_tag = p_tag
             WHERE r.id = ANY (ARRAY(SELECT id FROM picked))
            RETURNING r.id, r.command, r.args::text AS args, r.id_domain, r.uid, r.retry, r.attempts, r.priority)
    SELECT k.id, k.command, k.args, k.id_domain, k.uid, k.retry, k.attempts,
           k.command = ANY (p_inline),
           CASE WHEN k.command = ANY (p_secondary) THEN 'secondary'
                WHEN k.command = ANY (p_long) THEN 'long' ELSE 'important' END
      FROM claimed k
     ORDER BY k.priority DESC, k.id;
END
$$;

-- Gives back the requests that daemon p_daemon took with claim p_tag and never received: they
-- were not started, so they return to the queue as they were (the attempt is not counted). One
-- whose identical no-duplicate twin was enqueued meanwhile is cancelled, naming the twin (see
-- 0008). Returns how many were given back.
CREATE FUNCTION vmrq_release_claim(p_daemon int, p_tag bigint) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    n int;
BEGIN
    WITH lost AS (
        SELECT r.id,
               (SELECT t.id FROM requests t
                 WHERE t.dedupe_key = r.dedupe_key AND t.status IN ('requested', 'waiting') AND t.id <> r.id
                 LIMIT 1) AS twin
          FROM requests r
         WHERE r.status = 'working' AND r.id_daemon = p_daemon AND r.claim_tag = p_tag
           FOR UPDATE OF r
    )
    UPDATE requests r
       SET status = CASE WHEN lost.twin IS NULL THEN 'requested' ELSE 'cancelled' END::request_status,
           error = CASE WHEN lost.twin IS NOT NULL
                        THEN format('claimed when the database connection broke, not run; request %s, the same, is pending',
                                    lost.twin) END,
           finished_at = CASE WHEN lost.twin IS NOT NULL THEN now() END,
           started_at = NULL, id_daemon = NULL, claim_tag = NULL,
           attempts = greatest(r.attempts - 1, 0)
      FROM lost
     WHERE r.id = lost.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
