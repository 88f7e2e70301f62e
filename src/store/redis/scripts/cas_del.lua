-- Deletes KEYS[1] only while it holds ARGV[1]; 1 if it did.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
