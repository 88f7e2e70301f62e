-- KEYS[1]: a hash. ARGV: field, expected value, field, expected value… Deletes each field that
-- still holds its expected value; returns how many it deleted.
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n
