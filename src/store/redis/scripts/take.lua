-- Deletes KEYS[1] and returns its value (GETDEL, which Redis < 6.2 lacks).
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
