-- 0001_baseline.sql - the tables of vmrq 0.1.0: people and machines, the catalog, the request
-- queue and its history, the daemons that work it, the hypervisor's events.
--
-- A migration holds what has data: types, tables, columns, indexes, constraints, and the data
-- changes a new column needs. It runs once, recorded in schema_migrations, and is never edited
-- after a release: a change is a new file, NNNN_what.sql. It holds no function, trigger or view:
-- those live in sql/functions/, one current source each, re-created by `vmrq db upgrade`
-- (frontend-api/migrate.c). A migration that retires or re-types a function drops it here
-- (DROP FUNCTION), and its new body goes in the source. Migrations run inside the upgrade's one
-- transaction: nothing that cannot (CREATE INDEX CONCURRENTLY).
--
-- Objects are created in the first schema of the search_path (public by default); every
-- function pins that search_path, so the schema may live beside a portal's own tables.
--
-- Before 0.1.0 this was eleven files (0001_init ... 0011_release); the reasons behind the
-- indexes below are told where each is used (functions/transitions.sql).

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
    status_seen      timestamptz,
    shutdown_timeout int CHECK (shutdown_timeout >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    date_changed     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE domains IS 'Virtual machines vmrq manages. status follows the hypervisor.';
COMMENT ON COLUMN domains.shutdown_timeout IS 'Seconds a shutdown waits before forcing, when the request gives no timeout.';
COMMENT ON COLUMN domains.status_seen IS
    'When vmrqd observed the state that status records (an event''s arrival, a worker''s or a refresh''s reading, by vmrqd''s clock); an older observation does not overwrite it (vmrq_status_not_older()).';

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

-- ------------------------------------------------------------------ the queue

-- The transitions between these states are the table at the top of functions/transitions.sql.
CREATE TYPE request_status AS ENUM ('requested', 'waiting', 'working', 'done', 'failed', 'cancelled');
COMMENT ON TYPE request_status IS
    'requested: runs once at_time has passed; waiting: on after_request(_ok); working: claimed; '
    'done, failed, cancelled: final.';

-- uuid's default, vmrq_uuid_v7(), is set beside that function (functions/enqueue.sql).
CREATE TABLE requests (
    id               bigserial PRIMARY KEY,
    uuid             uuid NOT NULL UNIQUE,
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
    finished_at      timestamptz,
    id_daemon        int,
    attempts         int NOT NULL DEFAULT 0,
    claim_tag        bigint
);
COMMENT ON TABLE requests IS 'The request queue, and its history: finished rows stay until cleanup.';
COMMENT ON COLUMN requests.priority IS 'Higher runs first; then older first.';
COMMENT ON COLUMN requests.at_time IS 'Run not before this time (the `at` option).';
COMMENT ON COLUMN requests.dedupe_key IS 'Set for no-duplicate commands: at most one pending request per key.';
COMMENT ON COLUMN requests.id_daemon IS 'The vmrqd (daemons.id) that claimed the request.';
COMMENT ON COLUMN requests.attempts IS 'How many times a vmrqd has started it (retries included).';
COMMENT ON COLUMN requests.claim_tag IS 'The claim that took it, as tagged by the claiming vmrqd.';

-- The claim walks pending requests in (priority, id) order; this is the one index that lists
-- them all (see vmrq_claim(), functions/transitions.sql).
CREATE INDEX requests_claim ON requests (priority DESC, id) WHERE status = 'requested';
-- The claim's gate: is any request of a lane's commands pending? Its predicate names
-- `command IS NOT NULL`, which the walk does not say, so the walk cannot use it instead.
CREATE INDEX requests_pending_command ON requests (command) WHERE status = 'requested' AND command IS NOT NULL;
-- At most one identical pending request of a no-duplicate command (see vmrq_enqueue()); only
-- rows with a key, so that it is no list of every pending request either.
CREATE UNIQUE INDEX requests_dedupe ON requests (dedupe_key)
    WHERE status IN ('requested', 'waiting') AND dedupe_key IS NOT NULL;
-- Per-domain serialization, two bounded probes: a request of this domain working; an older one due.
CREATE INDEX requests_domain_working ON requests (id_domain) WHERE status = 'working' AND id_domain IS NOT NULL;
CREATE INDEX requests_domain_active ON requests (id_domain, id)
    WHERE status IN ('requested', 'working') AND id_domain IS NOT NULL;
-- The daemon's timer: the earliest scheduled request.
CREATE INDEX requests_scheduled ON requests (at_time) WHERE status = 'requested' AND at_time IS NOT NULL;
-- Dependency resolution and recovery look only at these few rows.
CREATE INDEX requests_waiting ON requests (id) WHERE status = 'waiting';
CREATE INDEX requests_working ON requests (id_daemon) WHERE status = 'working';
-- cleanup deletes the oldest finished rows first.
CREATE INDEX requests_finished ON requests (finished_at) WHERE status IN ('done', 'failed', 'cancelled');

-- ------------------------------------------------------------------ the backend

-- Every vmrqd that ever ran. A live one refreshes heartbeat_at every lease/3; one whose heartbeat
-- is older than its lease (or that stopped) holds no claim any more (see vmrq_recover()).
CREATE TABLE daemons (
    id           serial PRIMARY KEY,
    node         text NOT NULL,
    hostname     text NOT NULL,
    pid          int NOT NULL,
    version      text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz
);
COMMENT ON TABLE daemons IS 'vmrqd processes, live and past; requests.id_daemon names the claimant.';

-- What the hypervisor says happened to each domain, as libvirt's lifecycle events tell it:
-- 'stopped/shutdown', 'stopped/destroyed', 'started/booted', ... One row per event.
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
