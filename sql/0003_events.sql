-- 0003_events.sql - what the hypervisor says happened to each domain, as libvirt's lifecycle
-- events tell it: 'stopped/shutdown', 'stopped/destroyed', 'started/booted', ... One row per event.

CREATE TABLE domain_events (
    id        bigserial PRIMARY KEY,
    id_domain int,
    domain    text NOT NULL,
    event     text NOT NULL,
    detail    text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE domain_events IS 'Lifecycle events from the hypervisor, as vmrqd received them.';

CREATE INDEX domain_events_domain ON domain_events (id_domain, id);
