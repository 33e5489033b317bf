-- enqueue.sql - how a request gets into the queue, by whatever path: a plain INSERT (the row
-- trigger checks it against the catalog and fills in its columns), vmrq_enqueue() and
-- vmrq_request() for portals, and libvmrq's statements (frontend-api/queue.c), which insert.
-- What was asked never changes once inserted. The first status of a row is
-- vmrq_initial_status() (transitions.sql).

-- A new UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Request
-- uuids begin with the time so that the index entries a claim and a completion add (neither
-- update is HOT: `status` is in the predicates of the queue's partial indexes) stay together at
-- the end of requests_uuid_key, instead of landing on pages a million finished rows pushed out
-- of shared_buffers (make bench, history: the drain went from 76% to about 90% of its speed on
-- an empty table). libvmrq makes the same kind client-side (frontend-api/request.c).
CREATE OR REPLACE FUNCTION vmrq_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
    -- the time over the first 6 bytes of a random uuid, and the version nibble from 4 to 7
    SELECT encode(set_bit(set_bit(
               overlay(uuid_send(gen_random_uuid())
                       PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                       FROM 1 FOR 6),
               52, 1), 53, 1), 'hex')::uuid
$$;
REVOKE ALL ON FUNCTION vmrq_uuid_v7() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_uuid_v7() TO vmrq_portal, vmrq_operator, vmrq_daemon;
COMMENT ON FUNCTION vmrq_uuid_v7() IS 'A new UUID version 7: Unix milliseconds first, then random bits.';

ALTER TABLE requests ALTER COLUMN uuid SET DEFAULT vmrq_uuid_v7();

-- Every new row, whoever inserts it: validated against the catalog, options moved from args
-- into their columns, columns the backend keys on filled in, and the state forced to a fresh
-- one. It bounds bulk enqueue (make bench, bulk), hence two habits:
-- * A PL/pgSQL condition that holds a subquery is not a "simple expression": it runs through
--   the executor, about 6 us, even when its first operand is false. The after_request lookups
--   run only when the option is there.
-- * The options are looked at only when one of them is there: one test for the common row.
CREATE OR REPLACE FUNCTION vmrq_requests_before_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    a     jsonb := coalesce(NEW.args, '{}'::jsonb);
    flags text[];
BEGIN
    flags := vmrq_check_args(NEW.command, a);
    NEW.dedupe_key := vmrq_dedupe_key(NEW.command, a, 'nodup' = ANY (flags));
    NEW.args := a;
    IF a ?| '{at,after_request,after_request_ok,retry,priority,_force}'::text[] THEN
        IF a ? 'at' THEN
            NEW.at_time := vmrq_time(a -> 'at');
        END IF;
        IF a ? 'after_request' THEN
            NEW.after_request := (a ->> 'after_request')::bigint;
        END IF;
        IF a ? 'after_request_ok' THEN
            NEW.after_request_ok := (a ->> 'after_request_ok')::bigint;
        END IF;
        IF a ? 'retry' THEN
            NEW.retry := (a ->> 'retry')::int;
        END IF;
        IF a ? 'priority' THEN
            NEW.priority := (a ->> 'priority')::int;
        END IF;
        NEW.args := a - '{at,after_request,after_request_ok,retry,priority,_force}'::text[];
    END IF;

    IF NEW.after_request IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = NEW.after_request) THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = format('%s: argument ''after_request'' names no request %s',
                                 NEW.command, NEW.after_request);
        END IF;
    END IF;
    IF NEW.after_request_ok IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = NEW.after_request_ok) THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = format('%s: argument ''after_request_ok'' names no request %s',
                                 NEW.command, NEW.after_request_ok);
        END IF;
    END IF;

    -- The node that runs it, read with the domain: its domain's; made from a base (clone,
    -- provision), the base's; a refresh_vms, the node it names; else none (any node). Its
    -- insert wakes that node's vmrqd only (vmrq_requests_notify_new()).
    NEW.uid := (NEW.args ->> 'uid')::int;
    NEW.id_domain := (NEW.args ->> 'id_domain')::int;
    NEW.id_node := NULL;
    IF NEW.id_domain IS NOT NULL THEN
        SELECT d.id_node INTO NEW.id_node FROM domains d WHERE d.id = NEW.id_domain;
    ELSIF NEW.args ? 'name' THEN
        SELECT d.id, d.id_node INTO NEW.id_domain, NEW.id_node FROM domains d WHERE d.name = NEW.args ->> 'name';
    END IF;
    IF NEW.args ? 'id_base' THEN
        SELECT d.id_node INTO NEW.id_node FROM domains d WHERE d.id = (NEW.args ->> 'id_base')::int;
    ELSIF NEW.args ? 'base' THEN
        SELECT d.id_node INTO NEW.id_node FROM domains d WHERE d.name = NEW.args ->> 'base';
    ELSIF NEW.command = 'refresh_vms' AND NEW.args ? 'node' THEN
        SELECT n.id INTO NEW.id_node FROM nodes n WHERE n.name = NEW.args ->> 'node';
    END IF;

    NEW.status := vmrq_initial_status(NEW.after_request, NEW.after_request_ok);
    NEW.error := NULL;
    NEW.output := NULL;
    NEW.started_at := NULL;
    NEW.finished_at := NULL;
    NEW.id_daemon := NULL;
    NEW.attempts := 0;
    NEW.claim_tag := NULL;
    NEW.date_req := now();
    NEW.date_changed := now();
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION vmrq_requests_before_insert() FROM PUBLIC;

CREATE OR REPLACE TRIGGER requests_before_insert BEFORE INSERT ON requests
    FOR EACH ROW EXECUTE FUNCTION vmrq_requests_before_insert();

-- What was asked is history: command, args and uuid never change.
CREATE OR REPLACE FUNCTION vmrq_requests_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = '55000',
        MESSAGE = format('request %s: command, args and uuid cannot change', OLD.id);
END $$;
REVOKE ALL ON FUNCTION vmrq_requests_immutable() FROM PUBLIC;

CREATE OR REPLACE TRIGGER requests_immutable BEFORE UPDATE ON requests
    FOR EACH ROW
    WHEN (NEW.command IS DISTINCT FROM OLD.command OR NEW.args IS DISTINCT FROM OLD.args
          OR NEW.uuid IS DISTINCT FROM OLD.uuid)
    EXECUTE FUNCTION vmrq_requests_immutable();

-- date_changed follows every update that does not set it itself (the transitions set it, and
-- then pay no trigger call per row).
CREATE OR REPLACE FUNCTION vmrq_requests_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.date_changed := now();
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION vmrq_requests_touch() FROM PUBLIC;

CREATE OR REPLACE TRIGGER requests_touch BEFORE UPDATE ON requests
    FOR EACH ROW
    WHEN (NEW.date_changed IS NOT DISTINCT FROM OLD.date_changed)
    EXECUTE FUNCTION vmrq_requests_touch();

-- Wakes the vmrqd that can run what a statement inserted, once per node however many rows: a
-- node's daemons LISTEN vmrq_request_<nodes.id>, and every daemon LISTENs vmrq_request, which
-- is for requests any node may run (no domain, or a domain without a node: ping_backend,
-- cleanup). Those wake every daemon: the first claim takes the request and the others' claims
-- find nothing (their gate is one index probe); waking one instead would need the database to
-- pick a live daemon, and a wrong pick (one stopping, or dead within its lease) would leave the
-- request to the fallback poll. A domain request wakes its node only: with 50 nodes, one claim
-- per request instead of 50 (make bench, fleet).
CREATE OR REPLACE FUNCTION vmrq_requests_notify_new() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(CASE WHEN n.id_node IS NULL THEN 'vmrq_request' ELSE 'vmrq_request_' || n.id_node END, '')
       FROM (SELECT DISTINCT t.id_node FROM vmrq_new_requests t) n;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION vmrq_requests_notify_new() FROM PUBLIC;

CREATE OR REPLACE TRIGGER requests_notify_new AFTER INSERT ON requests
    REFERENCING NEW TABLE AS vmrq_new_requests
    FOR EACH STATEMENT EXECUTE FUNCTION vmrq_requests_notify_new();

-- Enqueues a request and says which one holds it: the new row, or the existing one when
-- request_uuid was used before (same command) or an identical no-duplicate request is pending.
-- Existing rows are looked for first, so that a duplicate costs no insert and no sequence value;
-- the ON CONFLICT loop settles races between concurrent callers.
CREATE OR REPLACE FUNCTION vmrq_enqueue(command text, args jsonb DEFAULT '{}', request_uuid uuid DEFAULT NULL)
RETURNS TABLE (id bigint, uuid uuid, created boolean, status request_status)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    r    record;
    a    jsonb := coalesce(vmrq_enqueue.args, '{}'::jsonb);
    dkey text;
BEGIN
    dkey := vmrq_dedupe_key(vmrq_enqueue.command, a,
                            'nodup' = ANY (vmrq_check_args(vmrq_enqueue.command, a)));
    FOR attempt IN 1 .. 10 LOOP
        IF request_uuid IS NOT NULL THEN
            SELECT q.id, q.uuid, q.command, q.status INTO r FROM requests q WHERE q.uuid = request_uuid;
            IF FOUND THEN
                IF r.command <> vmrq_enqueue.command THEN
                    RAISE EXCEPTION USING ERRCODE = '22023',
                        MESSAGE = format('%s: uuid %s is already used by request %s (%s)',
                                         vmrq_enqueue.command, request_uuid, r.id, r.command);
                END IF;
                id := r.id; uuid := r.uuid; created := false; status := r.status;
                RETURN NEXT;
                RETURN;
            END IF;
        END IF;
        IF dkey IS NOT NULL THEN
            SELECT q.id, q.uuid, q.status INTO r FROM requests q
             WHERE q.dedupe_key = dkey AND q.status IN ('requested', 'waiting');
            IF FOUND THEN
                id := r.id; uuid := r.uuid; created := false; status := r.status;
                RETURN NEXT;
                RETURN;
            END IF;
        END IF;
        -- no uuid given: the column's default, version 7 like every other path's
        INSERT INTO requests AS q (command, args, uuid)
        VALUES (vmrq_enqueue.command, a, coalesce(request_uuid, vmrq_uuid_v7()))
        ON CONFLICT DO NOTHING
        RETURNING q.id, q.uuid, q.status INTO r;
        IF FOUND THEN
            id := r.id; uuid := r.uuid; created := true; status := r.status;
            RETURN NEXT;
            RETURN;
        END IF;
        -- a concurrent caller inserted the same uuid or duplicate first: look again
    END LOOP;
    RAISE EXCEPTION 'vmrq_enqueue: % kept colliding with concurrent requests', command;
END $$;
REVOKE ALL ON FUNCTION vmrq_enqueue(text, jsonb, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_enqueue(text, jsonb, uuid) TO vmrq_portal, vmrq_operator, vmrq_daemon;

-- The one call a portal needs: SELECT vmrq_request('shutdown', '{"uid": 1, "id_domain": 2}');
CREATE OR REPLACE FUNCTION vmrq_request(command text, args jsonb DEFAULT '{}', request_uuid uuid DEFAULT NULL)
RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT e.id FROM vmrq_enqueue(command, args, request_uuid) e
$$;
REVOKE ALL ON FUNCTION vmrq_request(text, jsonb, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_request(text, jsonb, uuid) TO vmrq_portal, vmrq_operator, vmrq_daemon;
