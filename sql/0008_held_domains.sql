-- 0008_held_domains.sql - a domain row another session holds no longer stalls vmrqd: the
-- completion of a request whose domain row stays locked is left for later, and says so in a
-- new result column, which CREATE OR REPLACE cannot add; the source (functions/transitions.sql)
-- defines it again.
DROP FUNCTION IF EXISTS vmrq_complete(int, jsonb);
