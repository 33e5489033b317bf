-- catalog.sql - checking a request against the catalog, and writing the catalog.
--
-- The catalog's source is the C table (frontend-api/catalog.c); `vmrq db upgrade` writes it into
-- `commands` with vmrq_catalog_write(), and every row inserted into requests is checked against
-- it here, in the same order and with the same words as frontend-api/validate.c (a test
-- compares the two on a table of bad rows).
--
-- Error codes raised by vmrq's own checks, for clients that branch on SQLSTATE:
--   22023 invalid_parameter_value   an invalid request (unknown command, bad argument)
--   P0002 no_data_found             no such request
--   55000 object_not_in_prerequisite_state   e.g. cancelling a request that already runs

-- A time given as `at`: epoch seconds (number) or a timestamp (string, read in the session's
-- TimeZone when it has no zone). NULL when it is neither, or not finite.
CREATE OR REPLACE FUNCTION vmrq_time(p_value jsonb) RETURNS timestamptz
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
REVOKE ALL ON FUNCTION vmrq_time(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_time(jsonb) TO vmrq_portal, vmrq_operator, vmrq_daemon;

-- A value or name as a message quotes it, on one short line: cut after 128 characters (then
-- "..."), each control character (U+0001-U+001F, U+007F-U+009F) written \u00XX. The same as
-- vmrq_json_quote() in frontend-api/jsonb.c. Runs only when a message is made.
CREATE OR REPLACE FUNCTION vmrq_quote(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN q !~ '[\x01-\x1f\x7f-\x9f]' THEN q
                ELSE (SELECT string_agg(CASE WHEN c ~ '[\x01-\x1f\x7f-\x9f]'
                                             THEN '\u' || lpad(to_hex(ascii(c)), 4, '0') ELSE c END,
                                        '' ORDER BY i)
                        FROM unnest(string_to_array(q, NULL)) WITH ORDINALITY AS x(c, i))
           END
      FROM (SELECT CASE WHEN length(p_text) > 128 THEN left(p_text, 128) || '...' ELSE p_text END AS q) s
$$;
REVOKE ALL ON FUNCTION vmrq_quote(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_quote(text) TO vmrq_portal, vmrq_operator, vmrq_daemon;

-- Raises the catalog's message for the first problem of (command, args), checking in the same
-- order as frontend-api/validate.c; returns the command's flags. Every row inserted into
-- requests comes through here, so the common case runs one query (the catalog row) and no other.
-- No SET search_path of its own: that is a GUC save and restore at every call (about 2.5 us of
-- a row's 20); its callers, the insert trigger and vmrq_enqueue(), pin the path already.
CREATE OR REPLACE FUNCTION vmrq_check_args(p_command text, p_args jsonb) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
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
    t    text;
BEGIN
    IF p_command IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'missing command';
    END IF;
    SELECT * INTO c FROM commands WHERE name = p_command;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown command ''%s''', vmrq_quote(p_command));
    END IF;
    IF p_args IS NULL OR jsonb_typeof(p_args) <> 'object' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s: arguments must be a JSON object', p_command);
    END IF;
    -- Bounds (frontend-api/jsonb.h): the size as jsonb renders the arguments, which the library
    -- computes the same way; the nesting, looked at only when a value could be nested.
    t := p_args::text;
    IF octet_length(t) > 65536 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s: arguments must take at most 65536 bytes as JSON, not %s',
                             p_command, octet_length(t));
    END IF;
    IF (strpos(t, '[') > 0 OR strpos(substr(t, 2), '{') > 0)
       AND jsonb_path_exists(p_args, 'strict $.**{16 to last} ? (@.type() == "object" || @.type() == "array")') THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('%s: arguments must nest at most 16 levels deep', p_command);
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
                MESSAGE = format('%s: unknown argument ''%s''', p_command, vmrq_quote(k));
        END IF;
        vt := CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}' ELSE v::text END;
        msg := NULL;
        CASE spec ->> 'type'
        WHEN 'int' THEN
            IF jsonb_typeof(v) <> 'number' OR vt !~ '^-?[0-9]+$' THEN
                msg := format('%s: argument ''%s'' must be an integer, not ''%s''', p_command, k, vmrq_quote(vt));
            ELSIF vt::numeric < (spec ->> 'min')::numeric OR vt::numeric > (spec ->> 'max')::numeric THEN
                msg := format('%s: argument ''%s'' must be between %s and %s, not ''%s''',
                              p_command, k, spec ->> 'min', spec ->> 'max', vmrq_quote(vt));
            END IF;
        WHEN 'string' THEN
            IF jsonb_typeof(v) <> 'string' THEN
                msg := format('%s: argument ''%s'' must be a string, not ''%s''', p_command, k, vmrq_quote(vt));
            ELSIF vt = '' THEN
                msg := format('%s: argument ''%s'' must not be empty', p_command, k);
            ELSIF length(vt) > (spec ->> 'max')::int THEN
                msg := format('%s: argument ''%s'' must be at most %s characters long, not ''%s''',
                              p_command, k, spec ->> 'max', vmrq_quote(vt));
            ELSIF vt ~ '[\x01-\x1f\x7f-\x9f]' THEN
                msg := format('%s: argument ''%s'' must not contain control characters, not ''%s''',
                              p_command, k, vmrq_quote(vt));
            END IF;
        WHEN 'bool' THEN
            IF jsonb_typeof(v) <> 'boolean' THEN
                msg := format('%s: argument ''%s'' must be true or false, not ''%s''', p_command, k, vmrq_quote(vt));
            END IF;
        WHEN 'enum' THEN
            IF jsonb_typeof(v) <> 'string' OR NOT (spec -> 'values') ? vt THEN
                vals := ARRAY(SELECT jsonb_array_elements_text(spec -> 'values'));
                n := cardinality(vals);
                msg := format('%s: argument ''%s'' must be %s, not ''%s''', p_command, k,
                              CASE WHEN n = 1 THEN vals[1]
                                   ELSE array_to_string(vals[1:n - 1], ', ') || ' or ' || vals[n] END,
                              vmrq_quote(vt));
            END IF;
        WHEN 'time' THEN
            IF vmrq_time(v) IS NULL THEN
                msg := format('%s: argument ''%s'' must be a time (epoch seconds or a timestamp), not ''%s''',
                              p_command, k, vmrq_quote(vt));
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
REVOKE ALL ON FUNCTION vmrq_check_args(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_check_args(text, jsonb) TO vmrq_portal, vmrq_operator, vmrq_daemon;

-- The duplicate key of a no-duplicate command: the command and its arguments, ignoring the
-- options and `timeout`. NULL when duplicates are allowed (not no-duplicate, or _force).
CREATE OR REPLACE FUNCTION vmrq_dedupe_key(p_command text, p_args jsonb, p_nodup boolean) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_nodup AND (p_args -> '_force') IS DISTINCT FROM 'true'::jsonb
                THEN p_command || ' ' ||
                     md5((p_args - '{at,after_request,after_request_ok,retry,priority,_force,timeout}'::text[])::text)
           END
$$;
REVOKE ALL ON FUNCTION vmrq_dedupe_key(text, jsonb, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_dedupe_key(text, jsonb, boolean) TO vmrq_portal, vmrq_operator, vmrq_daemon;

-- Makes `commands` hold exactly the catalog p_rows (the JSON of frontend-api/catalog_json.c);
-- rows already right are not touched, so an upgrade of an up-to-date database writes nothing.
-- Pending requests of a command that left the catalog would never run: they are cancelled.
-- Returns how many commands were written or removed.
CREATE OR REPLACE FUNCTION vmrq_catalog_write(p_rows jsonb) RETURNS int
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    n int;
    m int;
BEGIN
    DELETE FROM commands WHERE name NOT IN (SELECT x ->> 'name' FROM jsonb_array_elements(p_rows) x);
    GET DIAGNOSTICS n = ROW_COUNT;
    WITH x AS (
        SELECT name, class, flags, args, needs_one_of, summary,
               ARRAY(SELECT jsonb_object_keys(args)) AS argnames,
               ARRAY(SELECT key FROM jsonb_each(args) WHERE (value ->> 'mandatory')::boolean) AS mandatory
          FROM jsonb_to_recordset(p_rows) AS x(name text, class text, flags text[], args jsonb,
                                              needs_one_of text[], summary text))
    INSERT INTO commands AS c (name, class, flags, args, needs_one_of, summary, argnames, mandatory)
    SELECT * FROM x
    ON CONFLICT (name) DO UPDATE
       SET class = EXCLUDED.class, flags = EXCLUDED.flags, args = EXCLUDED.args,
           needs_one_of = EXCLUDED.needs_one_of, summary = EXCLUDED.summary,
           argnames = EXCLUDED.argnames, mandatory = EXCLUDED.mandatory
     WHERE (c.class, c.flags, c.args, c.needs_one_of, c.summary, c.argnames, c.mandatory)
           IS DISTINCT FROM (EXCLUDED.class, EXCLUDED.flags, EXCLUDED.args, EXCLUDED.needs_one_of,
                             EXCLUDED.summary, EXCLUDED.argnames, EXCLUDED.mandatory);
    GET DIAGNOSTICS m = ROW_COUNT;
    PERFORM vmrq_cancel_uncatalogued();
    RETURN n + m;
END $$;
REVOKE ALL ON FUNCTION vmrq_catalog_write(jsonb) FROM PUBLIC;

-- The catalog as a table of arguments, one row each, for portals that build forms from it.
CREATE OR REPLACE VIEW command_args AS
SELECT c.name AS command,
       a.key AS arg,
       coalesce((a.value ->> 'mandatory')::boolean, false) AS mandatory,
       a.value ->> 'type' AS type,
       (a.value ->> 'min')::numeric AS min,   -- of a string: its length in characters
       (a.value ->> 'max')::numeric AS max,
       ARRAY(SELECT jsonb_array_elements_text(a.value -> 'values')) AS enum_values,
       coalesce((a.value ->> 'option')::boolean, false) AS is_option,
       a.value ->> 'help' AS help
  FROM commands c CROSS JOIN LATERAL jsonb_each(c.args) a;
