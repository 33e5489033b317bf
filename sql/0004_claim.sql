-- 0004_claim.sql - vmrqd's claim, as a function, so that its plan does not depend on the
-- statistics of `requests`.
--
-- The claim was a prepared statement. Its plan was made once, from statistics usually taken when
-- the queue was nearly empty; when a burst arrived (a classroom logging in) that plan fetched
-- every pending request through a partial index and sorted them at each claim: 9.8 ms per claim
-- with 8,000 domain requests pending, 260 requests/s (make bench, domains). With fresh
-- statistics (ANALYZE) the same statement ran 1,660 requests/s, but with the statistics of a
-- drain the inline lane then chose another plan and the drain fell from 38,000/s to 4,000/s.
-- Here the planner is told, for this function only, that sequential and bitmap scans are not
-- wanted, and requests_dedupe no longer covers every pending request (only those with a key, the
-- only ones it is for): requests_claim is then the one index that lists pending requests, and
-- each lane walks it in (priority, id) order and stops at its limit, whatever the statistics
-- say. (Disabling sorts too made the update find its rows by a full scan of the primary key:
-- 400 ms per claim.)
--
-- Lanes: inline commands (p_inline, at most p_inline_limit), then the worker commands of each
-- class. A lane with nothing pending does not walk at all: its gate probes
-- requests_pending_command once per command of the lane (LIMIT 1: a probe, never a join over
-- every pending request, which is what the planner made of a plain EXISTS). The lanes share one snapshot, so the
-- serialization per domain holds across them (see backend/claim.c for what "runnable" means).

-- The gate's index. Its predicate names `command IS NOT NULL`, which the walk does not say, so
-- the walk cannot use it as a list of every pending request.
CREATE INDEX requests_pending_command ON requests (command) WHERE status = 'requested' AND command IS NOT NULL;

DROP INDEX requests_dedupe;
CREATE UNIQUE INDEX requests_dedupe ON requests (dedupe_key)
    WHERE status IN ('requested', 'waiting') AND dedupe_key IS NOT NULL;

CREATE FUNCTION vmrq_claim(p_daemon int, p_node text,
                           p_inline text[], p_inline_limit int, p_important text[], p_important_limit int,
                           p_secondary text[], p_secondary_limit int, p_long text[], p_long_limit int)
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
                      AND (q.id_domain IS NULL OR NOT EXISTS (
                           SELECT 1 FROM requests o
                            WHERE o.id_domain = q.id_domain AND o.id <> q.id
                              AND (o.status = 'working'
                                   OR (o.status = 'requested' AND o.id < q.id
                                       AND (o.at_time IS NULL OR o.at_time <= now())))))
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
                   attempts = r.attempts + 1, date_changed = clock_timestamp()
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
