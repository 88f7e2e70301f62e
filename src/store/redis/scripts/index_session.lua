-- KEYS[1]: a user's session index (usess). ARGV: session key, TTL in ms. The index outlives
-- its longest session.
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
