-- V0002__compact: layout 2 (documented in src/store/keys.rs), for memory: the id index in
-- hash buckets, a user's files in a hash, file records as compact arrays.
--
-- A script can touch only the keys it is given, and on Redis Cluster only keys of one slot,
-- so mediagate rewrites the data itself before this runs (src/store/redis/relayout.rs: SCAN on
-- every master). This stamps the keyspace with its new layout. Idempotent.
--
-- KEYS[1] = {prefix}:meta
-- ARGV[1] = now, unix seconds
redis.call('HSET', KEYS[1], 'layout', 'user,utok,ftok,fids,uf,sess,usess,ugrants,dl,events')
redis.call('HSET', KEYS[1], 'layout_changed_at', ARGV[1])
return 1
