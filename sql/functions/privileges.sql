-- privileges.sql - who may touch which table: three roles, each granted what its users need
-- and no more. The functions' grants stand beside each function; the whole matrix, tables and
-- functions, is the table in README.md ("Roles"), which a test holds against the database.
--
--   vmrq_portal    a web portal: enqueue (vmrq_request(), vmrq_enqueue(), INSERT of command,
--                  args and uuid, which the row trigger checks), cancel a pending request, read
--                  requests, domains and the catalog, LISTEN. Nothing else.
--   vmrq_operator  the vmrq command line, but for `vmrq db upgrade`: the portal's rights, and
--                  users, domains and nodes managed, daemons and events read.
--   vmrq_daemon    vmrqd: the transitions of transitions.sql, enqueueing (follow-ups, its periodic
--                  requests), domains and their events written, its own row in daemons.
--
-- Nobody but the schema's owner, who runs `vmrq db upgrade`, may UPDATE or DELETE requests or
-- write users or the catalog. The roles are NOLOGIN; `vmrq db grant LOGIN --portal` makes a
-- login role a member of one. `vmrq db upgrade` creates them (or says what a superuser runs).

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO vmrq_portal, vmrq_operator, vmrq_daemon', current_schema());
END $$;

REVOKE ALL ON users, nodes, domains, commands, command_args, requests, daemons, domain_events,
              domain_conflicts, schema_migrations, schema_sources
    FROM PUBLIC, vmrq_portal, vmrq_operator, vmrq_daemon;
REVOKE ALL ON SEQUENCE users_id_seq, nodes_id_seq, domains_id_seq, requests_id_seq, daemons_id_seq,
                       domain_events_id_seq
    FROM PUBLIC, vmrq_portal, vmrq_operator, vmrq_daemon;

-- everyone: the catalog, and enqueueing (the trigger fills in every other column)
GRANT SELECT ON commands, command_args TO vmrq_portal, vmrq_operator, vmrq_daemon;
GRANT SELECT, INSERT (command, args, uuid) ON requests TO vmrq_portal, vmrq_operator, vmrq_daemon;
GRANT USAGE ON SEQUENCE requests_id_seq TO vmrq_portal, vmrq_operator, vmrq_daemon;

-- the portal reads domains (the trigger resolves a domain's name too), not users or nodes, nor a
-- base's definition (base_xml: it may hold a display's password), nor the display's password
-- (vmrq_display() gives it to the domain's owner)
GRANT SELECT (id, name, uuid, id_owner, id_node, status, status_seen, shutdown_timeout, created_at,
              date_changed, is_base, is_public, id_base, is_volatile, display_type, display_host,
              display_port, display_tls_port, viewer, viewer_since, viewer_address,
              shutdown_disconnected, run_timeout, pool_clones, pool_start, pool_volatile, is_pool)
    ON domains TO vmrq_portal;

-- the operator manages people and machines, and reads what vmrqd records
GRANT SELECT, INSERT, UPDATE, DELETE ON users, nodes, domains TO vmrq_operator;
GRANT USAGE ON SEQUENCE users_id_seq, nodes_id_seq, domains_id_seq TO vmrq_operator;
GRANT SELECT ON daemons, domain_events, domain_conflicts, schema_migrations, schema_sources TO vmrq_operator;

-- vmrqd reads rights and nodes, keeps domains and their events, registers itself, and checks
-- the schema at start
GRANT SELECT ON users, nodes, schema_migrations, schema_sources TO vmrq_daemon;
GRANT SELECT, INSERT, UPDATE ON domains, daemons TO vmrq_daemon;
GRANT DELETE ON domains TO vmrq_daemon; -- remove_domain
GRANT SELECT, INSERT ON domain_events TO vmrq_daemon;
-- refresh_vms records the names another node holds (each daemon its own node's rows)
GRANT SELECT, INSERT, UPDATE, DELETE ON domain_conflicts TO vmrq_daemon;
GRANT USAGE ON SEQUENCE domains_id_seq, daemons_id_seq, domain_events_id_seq TO vmrq_daemon;
