-- progress.sql - a long handler tells how far it has got: requests.progress of a request it runs
-- (working, claimed by this daemon). Not a change of status: the request stays working.

-- SECURITY DEFINER: vmrqd has no UPDATE on requests; this touches no column but progress, and
-- only a request that daemon p_daemon runs. Returns whether it was written.
CREATE OR REPLACE FUNCTION vmrq_progress(p_daemon int, p_id bigint, p_done real) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE requests SET progress = least(greatest(p_done, 0), 1)
     WHERE id = p_id AND status = 'working' AND id_daemon = p_daemon;
    RETURN FOUND;
END $$;
REVOKE ALL ON FUNCTION vmrq_progress(int, bigint, real) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_progress(int, bigint, real) TO vmrq_daemon;
