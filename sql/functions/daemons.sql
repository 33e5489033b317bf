-- daemons.sql - what a vmrqd asks of the database on its own clock, between requests.
--
-- An idle vmrqd runs one statement every two thirds of its lease (20 s), its beat: it is alive,
-- and, when their time has come, the recovery of dead daemons' claims, the fallback poll and the
-- enqueueing of its node's pools (backend/daemon.c, housekeeping()). They were four statements
-- on their own timers, 17 round trips a minute per daemon; with 50 daemons idle those round
-- trips were most of the database's CPU (make bench, fleet: idle database CPU).

-- The beat of daemon p_daemon (its row in daemons: heartbeat_at = now()). With p_recover, the
-- claims of daemons whose lease p_lease passed are taken back (vmrq_recover()). With p_poll, the
-- fallback for a lost notification: whether any request is pending (the daemon then claims) or
-- waits on a dependency (it then resolves). With p_pools_node, manage_pools for each base of that
-- node with a pool (NODUP: one pending per base). Returns whether the daemon's row was there,
-- how many claims were taken back, and the two answers of the poll (false unless p_poll).
-- Its own rights (vmrqd's): it writes daemons and inserts requests as vmrqd may; the recovery
-- is vmrq_recover()'s.
CREATE OR REPLACE FUNCTION vmrq_beat(p_daemon int, p_lease interval, p_recover boolean, p_poll boolean,
                                     p_pools_node text)
RETURNS TABLE (alive boolean, recovered int, pending boolean, waiting boolean)
LANGUAGE plpgsql SET search_path FROM CURRENT SET jit = off SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
BEGIN
    UPDATE daemons SET heartbeat_at = now() WHERE id = p_daemon;
    alive := FOUND;
    recovered := CASE WHEN p_recover THEN vmrq_recover(p_lease) ELSE 0 END;
    pending := p_poll AND EXISTS (SELECT 1 FROM requests r WHERE r.status = 'requested');
    waiting := p_poll AND EXISTS (SELECT 1 FROM requests r WHERE r.status = 'waiting');
    IF p_pools_node IS NOT NULL
       AND EXISTS (SELECT 1 FROM domains b JOIN nodes n ON n.id = b.id_node
                    WHERE n.name = p_pools_node AND b.is_base AND b.pool_clones > 0) THEN
        INSERT INTO requests (command, args)
        SELECT 'manage_pools', jsonb_build_object('id_base', b.id)
          FROM domains b JOIN nodes n ON n.id = b.id_node
         WHERE n.name = p_pools_node AND b.is_base AND b.pool_clones > 0
         ORDER BY b.id
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NEXT;
END $$;
REVOKE ALL ON FUNCTION vmrq_beat(int, interval, boolean, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_beat(int, interval, boolean, boolean, text) TO vmrq_daemon;
