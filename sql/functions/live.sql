-- live.sql - live updates for a portal: channels it can LISTEN to instead of polling.
--
--   vmrq_requests   every request a user asked for (one with a uid) inserted, and every change
--                   of its status, as JSON:
--                   {"id": 42, "status": "working", "command": "start", "id_domain": 7, "uid": 1}
--   vmrq_domains    every domain added and every change of its status or its viewer:
--                   {"id": 7, "name": "desk12", "status": "running", "viewer": "connected", "id_owner": 1}
--
-- A notification is sent when the transaction commits, in commit order. They are kept apart from
-- the daemons' wake-up (vmrq_request, enqueue.sql) and the waiters' vmrq_done (transitions.sql),
-- which carry what vmrqd and `vmrq wait` need and nothing more. Row triggers: a statement-level
-- trigger with transition tables costs more on the claim's and the completion's UPDATEs than
-- these calls (see vmrq_requests_notify_done()). Requests with no uid (vmrqd's own refresh_vms
-- and cleanup, health checks' ping_backend) are nobody's to follow, and skipped by the triggers'
-- WHEN, which costs nothing: a notification costs the claim or completion of a request some
-- 6-9 us, a third of what a ping_backend costs in all (make bench, drain).

CREATE OR REPLACE FUNCTION vmrq_requests_live() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vmrq_requests', json_build_object('id', NEW.id, 'status', NEW.status, 'command', NEW.command,
                                                         'id_domain', NEW.id_domain, 'uid', NEW.uid)::text);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION vmrq_requests_live() FROM PUBLIC;

CREATE OR REPLACE TRIGGER requests_live_new AFTER INSERT ON requests
    FOR EACH ROW WHEN (NEW.uid IS NOT NULL) EXECUTE FUNCTION vmrq_requests_live();

CREATE OR REPLACE TRIGGER requests_live_status AFTER UPDATE OF status ON requests
    FOR EACH ROW WHEN (NEW.uid IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION vmrq_requests_live();

CREATE OR REPLACE FUNCTION vmrq_domains_live() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vmrq_domains', json_build_object('id', NEW.id, 'name', NEW.name, 'status', NEW.status,
                                                        'viewer', NEW.viewer, 'id_owner', NEW.id_owner)::text);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION vmrq_domains_live() FROM PUBLIC;

CREATE OR REPLACE TRIGGER domains_live_new AFTER INSERT ON domains
    FOR EACH ROW EXECUTE FUNCTION vmrq_domains_live();

CREATE OR REPLACE TRIGGER domains_live_change AFTER UPDATE OF status, viewer ON domains
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.viewer IS DISTINCT FROM NEW.viewer)
    EXECUTE FUNCTION vmrq_domains_live();
