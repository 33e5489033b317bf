-- 0005_fleet.sql - many hypervisors on one database: a request knows the node that runs it (so
-- that its insert wakes only that node's vmrqd), and a hypervisor's domain whose name another
-- node's row holds is recorded instead of adopted (refresh_vms, backend/handlers_domain.c).

COMMENT ON COLUMN requests.id_node IS
    'The node that runs it: its domain''s, its base''s (clone, provision), or the one refresh_vms names; NULL: any node. Its insert notifies vmrq_request_<id_node> (vmrq_request when NULL).';

-- Pending requests of domains get their domain's node, as the row trigger now sets it.
UPDATE requests r SET id_node = d.id_node
  FROM domains d
 WHERE d.id = r.id_domain AND r.id_node IS NULL AND d.id_node IS NOT NULL
   AND r.status IN ('requested', 'waiting', 'working');

-- One row per (node, name): node id_node's hypervisor has a domain `name` whose row in domains
-- belongs to another node, so that node's vmrqd leaves it alone. Kept up to date by each
-- refresh_vms of id_node; shown by `vmrq domain list --conflicts`.
CREATE TABLE domain_conflicts (
    id_node    int NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    name       text NOT NULL,
    uuid       uuid,
    first_seen timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id_node, name)
);
COMMENT ON TABLE domain_conflicts IS
    'Hypervisor domains not adopted: their name is taken by another node''s row (refresh_vms writes it).';

-- The completions also say whether a finished request's domain has another request pending
-- (vmrqd claims again only then, or when a class was full): a new result type, which CREATE OR
-- REPLACE cannot make; the source (functions/transitions.sql) defines them again.
DROP FUNCTION IF EXISTS vmrq_complete_done(int, bigint[]);
DROP FUNCTION IF EXISTS vmrq_complete(int, jsonb);
