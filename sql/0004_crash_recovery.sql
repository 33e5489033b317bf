-- 0004_crash_recovery.sql - what recovery needs to know to put a dead daemon's requests back
-- instead of failing them (vmrq_recover(), functions/transitions.sql): whether the handler had
-- started, and how many daemons died while it ran. (Numbered 4: 0002 and 0003 are taken on main
-- by another branch's bases and progress.)

ALTER TABLE requests
    ADD COLUMN handler_started_at timestamptz,
    ADD COLUMN recoveries int NOT NULL DEFAULT 0 CHECK (recoveries >= 0);
COMMENT ON COLUMN requests.handler_started_at IS
    'When the claiming vmrqd started its handler; NULL while it is claimed and not started (it then goes back whatever its command).';
COMMENT ON COLUMN requests.recoveries IS
    'How many times a vmrqd died while running it; counted apart from retry; at 3 it fails.';
