-- 0001_init.sql - the vmrq schema: users, nodes, domains, the request queue and its catalog.
--
-- Applied once, inside a transaction, by `vmrq db upgrade`, which records it in
-- schema_migrations. Released migrations are never edited: a change is a new file.
--
-- Objects are created in the first schema of the search_path (public by default); every function
-- pins that search_path (SET search_path FROM CURRENT) so that callers with another one still work.
--
-- Error codes raised by vmrq's own checks, for clients that branch on SQLSTATE:
--   22023 invalid_parameter_value   an invalid request (unknown command, bad argument)
--   P0002 no_data_found             no such request
--   55000 object_not_in_prerequisite_state   e.g. cancelling a request that already runs

-- ------------------------------------------------------------------ people and machines

CREATE TABLE users (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    is_admin    boolean NOT NULL DEFAULT false,
    is_operator boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE users IS 'Who may ask for what: owners act on their domains, operators and admins on all.';

CREATE TABLE nodes (
    id      serial PRIMARY KEY,
    name    text NOT NULL UNIQUE CHECK (name <> ''),
    uri     text NOT NULL CHECK (uri <> ''),
    enabled boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE nodes IS 'Hypervisor hosts; each is served by one vmrqd (its `node` setting).';

CREATE TABLE domains (
    id               serial PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (name <> ''),
    uuid             uuid UNIQUE,
    id_owner         int REFERENCES users (id),
    id_node          int REFERENCES nodes (id),
    status           text NOT NULL DEFAULT 'unknown' CHECK (status IN
                         ('unknown', 'running', 'paused', 'shutting_down', 'shutdown', 'crashed',
                          'pmsuspended', 'hibernated', 'missing')),
    shutdown_timeout int CHECK (shutdown_timeout >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    date_changed     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE domains IS 'Virtual machines vmrq manages. status follows the hypervisor.';
COMMENT ON COLUMN domains.shutdown_timeout IS 'Seconds a shutdown waits before forcing, when the request gives no timeout.';

-- ------------------------------------------------------------------ the catalog

-- Written by `vmrq db upgrade` from the C catalog (frontend-api/catalog.c): do not edit by hand.
CREATE TABLE commands (
    name         text PRIMARY KEY,
    class        text NOT NULL,
    flags        text[] NOT NULL DEFAULT '{}',
    args         jsonb NOT NULL DEFAULT '{}',
    needs_one_of text[],
    summary      text NOT NULL DEFAULT '',
    argnames     text[] NOT NULL DEFAULT '{}', -- the keys of args, in jsonb key order
    mandatory    text[] NOT NULL DEFAULT '{}'  -- the mandatory ones, likewise
);
COMMENT ON TABLE commands IS 'The request catalog, written from the C table by vmrq db upgrade.';
COMMENT ON COLUMN commands.args IS
    'Argument name -> {type: int|string|bool|enum|time, mandatory, min, max, values, option, help}.';

CREATE VIEW command_args AS
SELECT c.name AS command,
       a.key AS arg,
       coalesce((a.value ->> 'mandatory')::boolean, false) AS mandatory,
       a.value ->> 'type' AS type,
       (a.value ->> 'min')::numeric AS min,
       (a.value ->> 'max')::numeric AS max,
       ARRAY(SELECT jsonb_array_elements_text(a.value -> 'values')) AS enum_values,
       coalesce((a.value ->> 'option')::boolean, false) AS is_option,
       a.value ->> 'help' AS help
  FROM commands c CROSS JOIN LATERAL jsonb_each(c.args) a;

-- ------------------------------------------------------------------ the queue

CREATE TYPE request_status AS ENUM ('requested', 'waiting', 'working', 'done', 'failed', 'cancelled');
COMMENT ON TYPE request_status IS
    'requested: runs once at_time has passed; waiting: on after_request(_ok); working: claimed; '
    'done, failed, cancelled: final.';

CREATE TABLE requests (
    id               bigserial PRIMARY KEY,
    uuid             uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    command          text NOT NULL,
    args             jsonb NOT NULL DEFAULT '{}',
    status           request_status NOT NULL DEFAULT 'requested',
    priority         int NOT NULL DEFAULT 0,
    at_time          timestamptz,
    after_request    bigint,
    after_request_ok bigint,
    retry            int NOT NULL DEFAULT 0 CHECK (retry >= 0),
    id_domain        int,
    uid              int,
    error            text,
    output           jsonb,
    dedupe_key       text,
    date_req         timestamptz NOT NULL DEFAULT now(),
    date_changed     timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);
COMMENT ON TABLE requests IS 'The request queue, and its history: finished rows stay until cleanup.';
COMMENT ON COLUMN requests.priority IS 'Higher runs first; then older first.';
COMMENT ON COLUMN requests.at_time IS 'Run not before this time (the `at` option).';
COMMENT ON COLUMN requests.dedupe_key IS 'Set for no-duplicate commands: at most one pending request per key.';

-- The backend's claim reads only pending rows, so its cost does not grow with the history.
CREATE INDEX requests_claim ON requests (priority DESC, id) WHERE status = 'requested';
-- At most one identical pending request of a no-duplicate command (see vmrq_enqueue()).
CREATE UNIQUE INDEX requests_dedupe ON requests (dedupe_key) WHERE status IN ('requested', 'waiting');

-- ------------------------------------------------------------------ validation

-- A time given as `at`: epoch seconds (number) or a timestamp (string, read in the session's
-- TimeZone when it has no zone). NULL when it is neither, or not finite.
CREATE FUNCTION vmrq_time(p_value jsonb) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
    t timestamptz;
BEGIN
    IF jsonb_typeof(p_value) = 'number' THEN
        IF p_value::text !~ '^[0-9]+$' THEN
            RETURN NULL;
        END IF;
        t := to_timestamp((p_value #>> '{}')::double precision);
    ELSIF jsonb_typeof(p_value) = 'string' THEN
        t := (p_value #>> '{}')::timestamptz;
    END IF;
    RETURN CASE WHEN isfinite(t) THEN t END;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END $$;

-- Raises the catalog's message for the first problem of (command, args), checking in the same
-- order as frontend-api/validate.c; returns the command's flags. Every row inserted into
-- requests comes through here, so the common case runs one query (the catalog row) and no other.
CREATE FUNCTION vmrq_check_args(p_command text, p_args jsonb) RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
    c    commands%ROWTYPE;
    keys text[];
    k    text;
    v    jsonb;
    spec jsonb;
    vt   text;
    vals text[];
    n    int;
    msg  text;
BEGIN
    IF p_command IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'missing command';
    END IF;
    SELECT * INTO c FROM commands WHERE name = p_command;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown command ''%s''', p_command);
    END IF;
    IF p_args IS NULL OR jsonb_typeof(p_args) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s: arguments must be a JSON object', p_command);
    END IF;

    -- The keys to check, in jsonb's key order (the order of the messages): the catalog's own
    -- list when every key is known, which needs no query; the arguments' keys otherwise.
    IF p_args - c.argnames = '{}'::jsonb THEN
        keys := c.argnames;
    ELSE
        keys := ARRAY(SELECT jsonb_object_keys(p_args));
    END IF;
    FOREACH k IN ARRAY keys LOOP
        CONTINUE WHEN NOT p_args ? k;
        v := p_args -> k;
        spec := c.args -> k;
        IF spec IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = format('%s: unknown argument ''%s''', p_command, k);
        END IF;
        vt := CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}' ELSE v::text END;
        msg := NULL;
        CASE spec ->> 'type'
        WHEN 'int' THEN
            IF jsonb_typeof(v) <> 'number' OR vt !~ '^-?[0-9]+$' THEN
                msg := format('%s: argument ''%s'' must be an integer, not ''%s''', p_command, k, vt);
            ELSIF vt::numeric < (spec ->> 'min')::numeric OR vt::numeric > (spec ->> 'max')::numeric THEN
                msg := format('%s: argument ''%s'' must be between %s and %s, not ''%s''',
                              p_command, k, spec ->> 'min', spec ->> 'max', vt);
            END IF;
        WHEN 'string' THEN
            IF jsonb_typeof(v) <> 'string' THEN
                msg := format('%s: argument ''%s'' must be a string, not ''%s''', p_command, k, vt);
            ELSIF vt = '' THEN
                msg := format('%s: argument ''%s'' must not be empty', p_command, k);
            END IF;
        WHEN 'bool' THEN
            IF jsonb_typeof(v) <> 'boolean' THEN
                msg := format('%s: argument ''%s'' must be true or false, not ''%s''', p_command, k, vt);
            END IF;
        WHEN 'enum' THEN
            IF jsonb_typeof(v) <> 'string' OR NOT (spec -> 'values') ? vt THEN
                vals := ARRAY(SELECT jsonb_array_elements_text(spec -> 'values'));
                n := cardinality(vals);
                msg := format('%s: argument ''%s'' must be %s, not ''%s''', p_command, k,
                              CASE WHEN n = 1 THEN vals[1]
                                   ELSE array_to_string(vals[1:n - 1], ', ') || ' or ' || vals[n] END,
                              vt);
            END IF;
        WHEN 'time' THEN
            IF vmrq_time(v) IS NULL THEN
                msg := format('%s: argument ''%s'' must be a time (epoch seconds or a timestamp), not ''%s''',
                              p_command, k, vt);
            END IF;
        ELSE
            msg := format('%s: argument ''%s'' has no type in the catalog', p_command, k);
        END CASE;
        IF msg IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = msg;
        END IF;
    END LOOP;

    IF NOT p_args ?& c.mandatory THEN
        FOREACH k IN ARRAY c.mandatory LOOP
            IF NOT p_args ? k THEN
                RAISE EXCEPTION USING ERRCODE = '22023',
                    MESSAGE = format('%s: missing mandatory argument ''%s''', p_command, k);
            END IF;
        END LOOP;
    END IF;

    IF c.needs_one_of IS NOT NULL AND NOT p_args ?| c.needs_one_of THEN
        vals := ARRAY(SELECT format('''%s''', x) FROM unnest(c.needs_one_of) x);
        n := cardinality(vals);
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s: needs argument %s', p_command,
                             CASE WHEN n = 1 THEN vals[1]
                                  ELSE array_to_string(vals[1:n - 1], ', ') || ' or ' || vals[n] END);
    END IF;
    RETURN c.flags;
END $$;

-- The duplicate key of a no-duplicate command: the command and its arguments, ignoring the
-- options and `timeout`. NULL when duplicates are allowed (not no-duplicate, or _force).
CREATE FUNCTION vmrq_dedupe_key(p_command text, p_args jsonb, p_nodup boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_nodup AND (p_args -> '_force') IS DISTINCT FROM 'true'::jsonb
                THEN p_command || ' ' ||
                     md5((p_args - '{at,after_request,after_request_ok,retry,priority,_force,timeout}'::text[])::text)
           END
$$;

-- ------------------------------------------------------------------ triggers

-- Every new row, whoever inserts it: validated against the catalog, options moved from args
-- into their columns, columns the backend keys on filled in, and the state forced to a fresh one.
CREATE FUNCTION vmrq_requests_before_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    a     jsonb := coalesce(NEW.args, '{}'::jsonb);
    flags text[];
BEGIN
    flags := vmrq_check_args(NEW.command, a);
    NEW.dedupe_key := vmrq_dedupe_key(NEW.command, a, 'nodup' = ANY (flags));
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

    IF NEW.after_request IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = NEW.after_request) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s: argument ''after_request'' names no request %s', NEW.command, NEW.after_request);
    END IF;
    IF NEW.after_request_ok IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.id = NEW.after_request_ok) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s: argument ''after_request_ok'' names no request %s', NEW.command, NEW.after_request_ok);
    END IF;

    NEW.uid := (NEW.args ->> 'uid')::int;
    NEW.id_domain := (NEW.args ->> 'id_domain')::int;
    IF NEW.id_domain IS NULL AND NEW.args ? 'name' THEN
        SELECT d.id INTO NEW.id_domain FROM domains d WHERE d.name = NEW.args ->> 'name';
    END IF;

    NEW.status := CASE WHEN NEW.after_request IS NULL AND NEW.after_request_ok IS NULL
                       THEN 'requested' ELSE 'waiting' END;
    NEW.error := NULL;
    NEW.output := NULL;
    NEW.started_at := NULL;
    NEW.finished_at := NULL;
    NEW.date_req := now();
    NEW.date_changed := now();
    RETURN NEW;
END $$;

CREATE TRIGGER requests_before_insert BEFORE INSERT ON requests
    FOR EACH ROW EXECUTE FUNCTION vmrq_requests_before_insert();

-- What was asked is history: command, args and uuid never change.
CREATE FUNCTION vmrq_requests_immutable() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = '55000',
        MESSAGE = format('request %s: command, args and uuid cannot change', OLD.id);
END $$;

CREATE TRIGGER requests_immutable BEFORE UPDATE ON requests
    FOR EACH ROW
    WHEN (NEW.command IS DISTINCT FROM OLD.command OR NEW.args IS DISTINCT FROM OLD.args
          OR NEW.uuid IS DISTINCT FROM OLD.uuid)
    EXECUTE FUNCTION vmrq_requests_immutable();

-- date_changed follows every update that does not set it itself (vmrqd sets it in its batched
-- statements, which then pay no trigger call per row).
CREATE FUNCTION vmrq_requests_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.date_changed := now();
    RETURN NEW;
END $$;

CREATE TRIGGER requests_touch BEFORE UPDATE ON requests
    FOR EACH ROW
    WHEN (NEW.date_changed IS NOT DISTINCT FROM OLD.date_changed)
    EXECUTE FUNCTION vmrq_requests_touch();

-- Wakes the backend (LISTEN vmrq_request) once per inserting statement, however many rows.
CREATE FUNCTION vmrq_requests_notify_new() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vmrq_request', '');
    RETURN NULL;
END $$;

CREATE TRIGGER requests_notify_new AFTER INSERT ON requests
    FOR EACH STATEMENT EXECUTE FUNCTION vmrq_requests_notify_new();

-- Tells waiters (LISTEN vmrq_done) that a request finished: payload 'ID STATUS'. (Waiters also
-- accept comma-separated lists of such pairs.) A statement-level trigger with transition tables
-- would call once per statement, but capturing those tables for every UPDATE costs more than
-- this call per finished row (measured: the drain slowed from 20,600 to 9,000 requests/s).
CREATE FUNCTION vmrq_requests_notify_done() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vmrq_done', NEW.id || ' ' || NEW.status);
    RETURN NULL;
END $$;

CREATE TRIGGER requests_notify_done AFTER UPDATE OF status ON requests
    FOR EACH ROW
    WHEN (NEW.status IN ('done', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION vmrq_requests_notify_done();

-- ------------------------------------------------------------------ the client API

-- Enqueues a request and says which one holds it: the new row, or the existing one when
-- request_uuid was used before (same command) or an identical no-duplicate request is pending.
-- Existing rows are looked for first, so that a duplicate costs no insert and no sequence value;
-- the ON CONFLICT loop settles races between concurrent callers.
CREATE FUNCTION vmrq_enqueue(command text, args jsonb DEFAULT '{}', request_uuid uuid DEFAULT NULL)
RETURNS TABLE (id bigint, uuid uuid, created boolean, status request_status)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
#variable_conflict use_column
DECLARE
    r   record;
    a   jsonb := coalesce(vmrq_enqueue.args, '{}'::jsonb);
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
        INSERT INTO requests AS q (command, args, uuid)
        VALUES (vmrq_enqueue.command, a, coalesce(request_uuid, gen_random_uuid()))
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

-- The one call a portal needs: SELECT vmrq_request('shutdown', '{"uid": 1, "id_domain": 2}');
CREATE FUNCTION vmrq_request(command text, args jsonb DEFAULT '{}', request_uuid uuid DEFAULT NULL)
RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
    SELECT e.id FROM vmrq_enqueue(command, args, request_uuid) e
$$;

-- Cancels a pending request; errors name why not (no such request, already running or finished).
CREATE FUNCTION vmrq_cancel(request_id bigint, reason text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    st  request_status;
    cmd text;
BEGIN
    UPDATE requests SET status = 'cancelled', finished_at = now(), error = coalesce(reason, 'cancelled')
     WHERE id = request_id AND status IN ('requested', 'waiting');
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT status, command INTO st, cmd FROM requests WHERE id = request_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = format('no request %s', request_id);
    END IF;
    RAISE EXCEPTION USING ERRCODE = '55000',
        MESSAGE = format('request %s (%s) is %s: only a requested or waiting request can be cancelled',
                         request_id, cmd, st);
END $$;
