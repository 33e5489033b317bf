-- 0003_progress.sql - how far a long handler has got (prepare_base copying whole disks), for
-- `vmrq wait` and `vmrq show` and any portal: written by vmrqd at most once a second
-- (vmrq_progress(), functions/progress.sql).

ALTER TABLE requests ADD COLUMN progress real CHECK (progress >= 0 AND progress <= 1);
COMMENT ON COLUMN requests.progress IS 'How much of a long handler''s work is done, 0 to 1; NULL for handlers that do not say.';
