-- display.sql - getting to a desktop: its display for a portal (vmrq_display()), and the rule
-- that a domain that stops has no display and no viewer any more. vmrqd reads the display after
-- every start (backend/hooks.c) and follows the viewer through libvirt's graphics events
-- (backend/events.c).

-- The display of domain p_id_domain for user p_uid, its owner or an operator or admin: no row
-- while it has none (it does not run). SECURITY DEFINER: the portal cannot read
-- domains.display_password itself (privileges.sql); this function is its one way to it, after
-- the same rights check vmrqd makes (backend/domain.c).
CREATE OR REPLACE FUNCTION vmrq_display(p_id_domain int, p_uid int)
RETURNS TABLE (type text, host text, port int, tls_port int, password text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    d domains%ROWTYPE;
    u users%ROWTYPE;
BEGIN
    SELECT * INTO d FROM domains WHERE id = p_id_domain;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = format('display: no domain %s', p_id_domain);
    END IF;
    SELECT * INTO u FROM users WHERE id = p_uid;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = format('display: no user %s', p_uid);
    END IF;
    IF d.id_owner IS DISTINCT FROM u.id AND NOT u.is_operator AND NOT u.is_admin THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = format('display: user %s is not allowed to display %s', u.name, d.name);
    END IF;
    IF d.display_type IS NOT NULL THEN
        RETURN QUERY SELECT d.display_type, d.display_host, d.display_port, d.display_tls_port, d.display_password;
    END IF;
END $$;
REVOKE ALL ON FUNCTION vmrq_display(int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_display(int, int) TO vmrq_portal, vmrq_operator;

-- A domain that stops (or goes missing) offers no display, and nobody watches it: whichever
-- writer records the stop (an event, a completion, a refresh), the display goes with it and a
-- connected viewer becomes disconnected. Only a change of status counts: a start writes the
-- display before its completion writes `running`, and a late event of the stop before it, which
-- writes the same stopped status again, must not take it away.
CREATE OR REPLACE FUNCTION vmrq_domains_stopped() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.display_type := NULL;
    NEW.display_host := NULL;
    NEW.display_port := NULL;
    NEW.display_tls_port := NULL;
    NEW.display_password := NULL;
    IF NEW.viewer = 'connected' THEN
        NEW.viewer := 'disconnected';
        NEW.viewer_since := now();
    END IF;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION vmrq_domains_stopped() FROM PUBLIC;

CREATE OR REPLACE TRIGGER domains_stopped BEFORE UPDATE OF status ON domains
    FOR EACH ROW
    WHEN (NEW.status IN ('shutdown', 'crashed', 'hibernated', 'missing') AND NEW.status IS DISTINCT FROM OLD.status
          AND (OLD.display_type IS NOT NULL OR OLD.viewer = 'connected'))
    EXECUTE FUNCTION vmrq_domains_stopped();
