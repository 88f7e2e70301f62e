-- V0003__binary: layout 3 (documented in src/store/keys.rs), for memory: file records,
-- the id index and users' file lists hold tokens and ids as bytes rather than hex, and
-- records are binary (src/store/redis/record.rs) under `ft:` keys named by the token's bytes.
--
-- As for V0002, mediagate rewrites the data itself before this runs
-- (src/store/redis/relayout.rs: SCAN on every master). This stamps the keyspace with its new
-- layout. Idempotent.
--
-- KEYS[1] = {prefix}:meta
-- ARGV[1] = now, unix seconds
redis.call('HSET', KEYS[1], 'layout', 'user,utok,ft,ids,files,sess,usess,ugrants,dl,events')
redis.call('HSET', KEYS[1], 'layout_changed_at', ARGV[1])
return 1
