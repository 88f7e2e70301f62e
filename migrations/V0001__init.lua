-- V0001__init: the first keyspace layout (documented in src/store/keys.rs).
--
-- Layout v1 needs no data transformation: it stamps the keyspace as mediagate's so that a later
-- migration, or an operator, can tell an initialised store from a foreign or empty one.
-- Idempotent: HSETNX keeps the first values on a re-run.
--
-- KEYS[1] = {prefix}:meta
-- ARGV[1] = now, unix seconds
redis.call('HSETNX', KEYS[1], 'created_at', ARGV[1])
redis.call('HSETNX', KEYS[1], 'layout', 'user,utok,ftok,file,ufiles,sess,usess,ugrants,dl,events')
return 1
