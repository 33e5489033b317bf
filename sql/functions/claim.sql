-- claim.sql - vmrqd's claim: which requests one daemon takes now, in one statement.
--
--   exactly once    the rows are chosen FOR UPDATE SKIP LOCKED and flipped to `working`
--                   (vmrq_take(), transitions.sql) in the same statement: two daemons never take
--                   the same request
--   order           priority (higher first), then age
--   one at a time   per domain: a request whose domain has a request working, or an older one
--                   due and pending, is not runnable. Requests scheduled for later (`at`) or
--                   waiting on a dependency do not block their domain: a start must not wait
--                   behind a force_shutdown scheduled in five minutes, and a child waiting on a
--                   younger request must not deadlock
--   admission       lanes: the inline commands (p_inline, at most p_inline_limit), then the
--                   worker commands of each class, each at most its free slots (from vmrqd)
--   node affinity   a request whose domain lives on another node is left to that node's
--                   daemon (domains without a node, and requests without a domain, go to any
--                   daemon), and so is a refresh_vms naming another node
--
-- Plans that do not depend on the statistics: a queue's are always stale, taken while it was
-- empty and read during a burst (a classroom logging in). As a prepared statement the claim met
-- a plan made for an empty queue, which fetched every pending request and sorted them at each
-- claim: 9.8 ms per claim with 8,000 domain requests pending. With fresh statistics the drain
-- then chose another plan and fell from 38,000/s to 4,000/s. So this function tells the planner
-- that sequential and bitmap scans are not wanted: requests_claim is the one index that lists
-- pending requests, and each lane walks it in (priority, id) order and stops at its limit.
-- (Disabling sorts too made the update find its rows by a full scan of the primary key.)
-- A lane with nothing pending does not walk at all: its gate probes requests_pending_command
-- once per command of the lane (LIMIT 1: a probe, never a join over every pending request).
-- Whether a domain is busy is two probes, each stopped by its index: requests_domain_working
-- (the few working requests) and requests_domain_active, whose range ends at the candidate (for
-- the head of a domain's queue it is empty); one probe over the domain's whole queue cost about
-- 21 us per pending request of the domain, at every candidate.
-- With each row comes what a domain command's handler reads first, its domain's row and its
-- user's rights: two statements fewer per request on the worker's connection. They are read per
-- claimed row (the LIMIT 1 keeps each lateral subquery from being flattened into a join): as
-- plain joins the planner hashed the whole domains and users tables at every claim (1,401
-- instead of 3,998 domain requests/s with 10,000 domains).
CREATE OR REPLACE FUNCTION vmrq_claim(p_daemon int, p_node text,
                                      p_inline text[], p_inline_limit int,
                                      p_important text[], p_important_limit int,
                                      p_secondary text[], p_secondary_limit int,
                                      p_long text[], p_long_limit int, p_tag bigint)
RETURNS TABLE (id bigint, command text, args text, id_domain int, uid int, retry int, attempts int,
               inline boolean, class text, dom_name text, dom_uuid text, dom_owner int,
               dom_shutdown_timeout int, node_enabled boolean, user_name text, user_privileged boolean)
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
                                   CASE WHEN q.command = 'refresh_vms' THEN q.args ->> 'node' END,
                                   p_node) = p_node
                    ORDER BY q.priority DESC, q.id
                    LIMIT l.lim
                      FOR UPDATE OF q SKIP LOCKED) c
             WHERE l.lim > 0
               AND EXISTS (SELECT 1 FROM unnest(l.commands) k(c)
                            CROSS JOIN LATERAL (SELECT 1 FROM requests p
                                                 WHERE p.command = k.c AND p.command IS NOT NULL
                                                   AND p.status = 'requested' LIMIT 1) x))
    SELECT k.id, k.command, k.args, k.id_domain, k.uid, k.retry, k.attempts,
           k.command = ANY (p_inline),
           CASE WHEN k.command = ANY (p_secondary) THEN 'secondary'
                WHEN k.command = ANY (p_long) THEN 'long' ELSE 'important' END,
           d.name, coalesce(d.uuid::text, ''), coalesce(d.id_owner, 0), coalesce(d.shutdown_timeout, -1),
           coalesce(d.enabled, true), coalesce(u.name, ''), coalesce(u.privileged, false)
      FROM vmrq_take(ARRAY(SELECT id FROM picked), p_daemon, p_tag) k
      LEFT JOIN LATERAL (SELECT d.name, d.uuid, d.id_owner, d.shutdown_timeout, n.enabled
                           FROM domains d LEFT JOIN nodes n ON n.id = d.id_node
                          WHERE d.id = k.id_domain LIMIT 1) d ON true
      LEFT JOIN LATERAL (SELECT u.name, u.is_admin OR u.is_operator AS privileged
                           FROM users u WHERE u.id = k.uid LIMIT 1) u ON true
     ORDER BY k.priority DESC, k.id;
END
$$;
