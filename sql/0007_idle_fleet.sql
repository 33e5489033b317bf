-- 0007_idle_fleet.sql - what an idle vmrqd costs the database, made small for fleets of them
-- (make bench, fleet: idle database CPU).
--
-- Table daemons takes a beat of every vmrqd every lease/3 (six updates a minute each, 300 with 50
-- daemons) and is read only by primary key and from the few working requests
-- (functions/daemons.sql). With the default autovacuum settings it was vacuumed and analyzed
-- every minute, and each of those sent an invalidation that made every session plan its beat
-- again: a third of an idle fleet's database CPU. Its statistics never change a plan, and HOT
-- updates within its pages keep it small (fillfactor 50: room for a row's new version beside
-- the old), so autovacuum visits it after 100,000 changes (about five hours with 50 daemons).
ALTER TABLE daemons SET (fillfactor = 50, autovacuum_vacuum_threshold = 100000,
                         autovacuum_analyze_threshold = 100000);

-- Each vmrqd asks every pool_interval whether its node has bases with a pool: found through
-- this index instead of a scan of every domain (100,000 rows, 50 daemons, once a minute each).
CREATE INDEX domains_pools ON domains (id_node) WHERE is_base AND pool_clones > 0;
