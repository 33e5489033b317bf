-- 0006_claim_domain_probe.sql - the claim's test "is this request's domain busy" in constant
-- time.
--
-- vmrq_claim() (0004) asked, for each candidate, whether any other active request of its domain
-- was working or older and due, in one probe over requests_domain_active: the index condition
-- named the domain only, so the probe read every pending request of that domain, about 21 us
-- each. A class that books a room's twenty desktops at once (make bench, domains: 20 requests
-- per domain) paid for all twenty at every candidate. The test is now two probes, each stopped
-- by its index: "a request of this domain working" on requests_domain_working, which holds only
-- the few working requests, and "an older one due" on requests_domain_active, whose range ends
-- at the candidate's id (for the head of a domain's queue it is empty). The rest of the function
-- is 0004's, unchanged.

CREATE INDEX requests_domain_working ON requests (id_domain) WHERE status = 'working' AND id_domain IS NOT NULL;

CREATE OR REPLACE FUNCTION vmrq_claim(p_daemon int, p_node text,
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
