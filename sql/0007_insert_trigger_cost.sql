-- 0007_insert_trigger_cost.sql - the row trigger on requests, cheaper per row.
--
-- Every row inserted goes through vmrq_requests_before_insert(), and it bounded bulk enqueue:
-- 10,000 shutdown rows inserted in one statement cost about 40 us each with the trigger, 8 us
-- without it. Two things in it cost more than the checks themselves:
--
-- * A PL/pgSQL condition that holds a subquery is not a "simple expression": it runs through
--   the executor, about 6 us, even when its first operand is false. The two
--   "after_request ... AND NOT EXISTS (...)" tests paid that on every row, although almost no
--   row has those options. The lookup now runs only when the option is there.
-- * vmrq_check_args() had its own SET search_path, a GUC save and restore at every call
--   (about 2.5 us). Its callers, this trigger and vmrq_enqueue(), set the path already; it runs
--   with the privileges of whoever calls it, so a caller that calls it directly with another
--   path only misleads itself.
--
-- The options (at, after_request, ...) are now looked at only when one of them is there, one
-- test for the common row. The checks, their order and the messages are 0001's.

ALTER FUNCTION vmrq_check_args(text, jsonb) RESET search_path;

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
