-- 0002_bases.sql - desktops made from a base: a teacher prepares one desktop as a base, and each
-- student gets a clone of it, its disks thin overlays on the base's volumes (the handlers are
-- backend/handlers_base.c).

ALTER TABLE domains
    ADD COLUMN is_base boolean NOT NULL DEFAULT false,
    ADD COLUMN is_public boolean NOT NULL DEFAULT false,
    ADD COLUMN id_base int REFERENCES domains (id),
    ADD COLUMN is_volatile boolean NOT NULL DEFAULT false,
    ADD COLUMN base_xml text,
    ADD CONSTRAINT domains_base_has_definition CHECK (NOT is_base OR base_xml IS NOT NULL),
    ADD CONSTRAINT domains_clone_is_no_base CHECK (id_base IS NULL OR NOT is_base);
COMMENT ON COLUMN domains.is_base IS 'A base: not started, cloned (prepare_base made it, remove_base undoes it).';
COMMENT ON COLUMN domains.is_public IS 'Any user may clone this base (else operators and admins only).';
COMMENT ON COLUMN domains.id_base IS 'The base this desktop is a clone of.';
COMMENT ON COLUMN domains.is_volatile IS 'Removed, with its volumes, as soon as it stops.';
COMMENT ON COLUMN domains.base_xml IS 'A base''s definition, its disks on the base volumes: what its clones are made from.';

-- The clones of a base: remove_base and remove_domain refuse a base that has some.
CREATE INDEX domains_base ON domains (id_base) WHERE id_base IS NOT NULL;

-- A request's node when it has no domain yet (clone, provision: the node of their base): the
-- claim leaves it to that node's daemon.
ALTER TABLE requests ADD COLUMN id_node int;
COMMENT ON COLUMN requests.id_node IS 'The node a request without a domain of its own runs on (clone, provision: its base''s).';

-- vmrq_claim() returns whether the domain is a base: a new result type, which CREATE OR REPLACE
-- cannot make; the source (functions/transitions.sql) defines it again.
DROP FUNCTION IF EXISTS vmrq_claim(int, text, text[], int, text[], int, text[], int, text[], int, bigint);
