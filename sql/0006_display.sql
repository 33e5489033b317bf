-- 0006_display.sql - getting to the desktop: the display a started domain offers (read from the
-- hypervisor after each start, cleared when it stops), who is watching it (libvirt's graphics
-- events), and the policies that act on both (backend/hooks.c, backend/events.c). Numbered 6:
-- 0005 is another branch's.

ALTER TABLE domains
    ADD COLUMN display_type text CHECK (display_type IN ('spice', 'vnc')),
    ADD COLUMN display_host text,
    ADD COLUMN display_port int CHECK (display_port BETWEEN 1 AND 65535),
    ADD COLUMN display_tls_port int CHECK (display_tls_port BETWEEN 1 AND 65535),
    ADD COLUMN display_password text,
    ADD COLUMN viewer text CHECK (viewer IN ('connected', 'disconnected')),
    ADD COLUMN viewer_since timestamptz,
    ADD COLUMN viewer_address text,
    ADD COLUMN shutdown_disconnected int CHECK (shutdown_disconnected >= 0),
    ADD COLUMN run_timeout int CHECK (run_timeout > 0);
COMMENT ON COLUMN domains.display_type IS 'The display of the running domain: spice or vnc; NULL while it does not run.';
COMMENT ON COLUMN domains.display_host IS 'Where a viewer connects (the address the display listens on).';
COMMENT ON COLUMN domains.display_password IS
    'The display''s password, fresh at each start; read by the portal only through vmrq_display().';
COMMENT ON COLUMN domains.viewer IS 'connected or disconnected, from libvirt''s graphics events; NULL before any.';
COMMENT ON COLUMN domains.viewer_since IS 'When the viewer connected or disconnected.';
COMMENT ON COLUMN domains.viewer_address IS 'The viewer''s address (host:port), as the hypervisor saw it.';
COMMENT ON COLUMN domains.shutdown_disconnected IS
    'Seconds after its viewer disconnects (or after a start nobody connects to) a shutdown follows; NULL: never.';
COMMENT ON COLUMN domains.run_timeout IS 'Seconds after a start a shutdown follows; NULL: never.';

ALTER TABLE users ADD COLUMN start_limit int CHECK (start_limit >= 0);
COMMENT ON COLUMN users.start_limit IS 'Desktops the user may have running at once; NULL: no limit; operators and admins are exempt.';

-- a graphics event's client address
ALTER TABLE domain_events ADD COLUMN address text;

-- pools: a base keeps pool_clones clones made and pool_start of the free ones running
-- (manage_pools); provision hands a user a free one (backend/handlers_base.c)
ALTER TABLE domains
    ADD COLUMN pool_clones int CHECK (pool_clones >= 0),
    ADD COLUMN pool_start int CHECK (pool_start >= 0),
    ADD COLUMN pool_volatile boolean NOT NULL DEFAULT false,
    ADD COLUMN is_pool boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN domains.pool_clones IS 'A base''s pool: how many clones manage_pools keeps made (NULL or 0: no pool).';
COMMENT ON COLUMN domains.pool_start IS 'A base''s pool: how many of its free clones manage_pools keeps running.';
COMMENT ON COLUMN domains.pool_volatile IS 'A base''s pool clones are volatile: removed when they stop, never handed to a second user.';
COMMENT ON COLUMN domains.is_pool IS 'A clone of its base''s pool; free while it has no owner.';
CREATE INDEX domains_pool_free ON domains (id_base, id) WHERE is_pool AND id_owner IS NULL;
