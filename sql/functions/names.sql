-- names.sql - what the name of a user, a domain or a node may be: 1 to 100 characters, no
-- control character, no space at either end (a name is shown in tables, logs and portals, and
-- typed on command lines). The CLI says the same before it asks (cli_check_name(),
-- frontend-api/cli/cli.c); the database holds every writer to it. A domain the hypervisor names
-- otherwise is not adopted by refresh_vms or the event sink: it is left out of the table.

CREATE OR REPLACE FUNCTION vmrq_name_ok(p_name text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT char_length(p_name) BETWEEN 1 AND 100 AND p_name !~ '[[:cntrl:]]' AND p_name !~ '^ | $'
$$;
REVOKE ALL ON FUNCTION vmrq_name_ok(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vmrq_name_ok(text) TO vmrq_portal, vmrq_operator, vmrq_daemon;

-- The constraints that hold the tables to it, made again with the rule (a table of names is small).
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_name_ok;
ALTER TABLE users ADD CONSTRAINT users_name_ok CHECK (vmrq_name_ok(name));
ALTER TABLE domains DROP CONSTRAINT IF EXISTS domains_name_ok;
ALTER TABLE domains ADD CONSTRAINT domains_name_ok CHECK (vmrq_name_ok(name));
ALTER TABLE nodes DROP CONSTRAINT IF EXISTS nodes_name_ok;
ALTER TABLE nodes ADD CONSTRAINT nodes_name_ok CHECK (vmrq_name_ok(name));
