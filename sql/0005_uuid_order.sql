-- 0005_uuid_order.sql - request uuids in time order.
--
-- A request's row is updated twice (claimed, finished) and neither update is HOT: `status` is in
-- the predicates of the queue's partial indexes. So each update puts a new entry into every
-- index, requests_uuid_key included. With random uuids (version 4) those entries land on
-- leaf pages spread over the whole index: with a million finished requests kept as history,
-- every claim and completion touched pages that the history had pushed out of shared_buffers,
-- and the drain ran at 76% of its speed on an empty table (make bench, history). Uuids that
-- begin with the time (the layout of UUID version 7, RFC 9562: 48 bits of Unix milliseconds,
-- then random bits) keep the queue's entries together at the end of the index.
CREATE FUNCTION vmrq_uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
    -- the time over the first 6 bytes of a random uuid, and the version nibble from 4 to 7
    SELECT encode(set_bit(set_bit(
               overlay(uuid_send(gen_random_uuid())
                       PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                       FROM 1 FOR 6),
               52, 1), 53, 1), 'hex')::uuid
$$;
COMMENT ON FUNCTION vmrq_uuid_v7() IS 'A new UUID version 7: Unix milliseconds first, then random bits.';

ALTER TABLE requests ALTER COLUMN uuid SET DEFAULT vmrq_uuid_v7();
