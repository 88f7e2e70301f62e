-- Sets KEYS[1] to ARGV[2] only while it holds ARGV[1] (compare-and-swap); 1 if it did.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
