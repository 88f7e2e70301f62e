-- Appends one batch of audit events to a stream as one entry (see src/store/redis/audit.rs).
--
-- KEYS[1] = {prefix}:events
-- ARGV[1] = max_events, ARGV[2] = events in the batch, ARGV[3] = the batch, a JSON array
-- Returns the new entry's id: its last event's.
--
-- Event ids: an entry of n events has id M-S and its events are M-(S-n+1) .. M-S. M is kept
-- from the entry before, so that S counts events and trimming to the newest max_events is one
-- MINID. Each batch entry carries c (events) and x (entries) counted since the batches
-- began, or began again after an entry of one event (written by an earlier mediagate).
local key, max, n = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])

-- The value after `name` in a flat array of names and values (fields, XINFO), or nil.
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  -- A value, not none: `tonumber` with no argument at all raises.
  return nil
end

-- An entry's counts, or nil for an entry of one event.
local function counts(entry)
  local c, x = tonumber(field(entry[2], 'c')), tonumber(field(entry[2], 'x'))
  if c and x then return c, x end
end

local id, c, x
-- When entries of one event follow the last batch: how many, and the events per entry of the
-- batches before them.
local singles, avg = 0, nil
local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
if last[1] then
  id = last[1][1]
  c, x = counts(last[1])
  if not c then
    -- Written by an earlier mediagate: before the first batch, or, during a rolling upgrade,
    -- between batches. The count starts again after it.
    for _, entry in ipairs(redis.call('XREVRANGE', key, '+', '-', 'COUNT', 64)) do
      local bc, bx = counts(entry)
      if bc then
        avg = bc / bx
        break
      end
      singles = singles + 1
    end
  end
elseif redis.call('EXISTS', key) == 1 then
  -- Emptied by hand: the next id must still be above every id given out.
  id = field(redis.call('XINFO', 'STREAM', key), 'last-generated-id')
end
local ms, seq
if id then
  local dash = string.find(id, '-', 1, true)
  ms, seq = tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
else
  local t = redis.call('TIME')
  ms, seq = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), -1
end
c, x = (c or 0) + n, (x or 0) + 1
local top = seq + n
local new = string.format('%d-%d', ms, top)
redis.call('XADD', key, new, 'c', c, 'x', x, 'b', ARGV[3])
if c >= max then
  redis.call('XTRIM', key, 'MINID', '~', string.format('%d-%d', ms, top - max + 1))
else
  -- Keep max - c events of the entries older than the count: the entries of one event, then
  -- batches of about avg events.
  local rest, older = max - c, max - c
  if avg and rest > singles then
    older = singles + math.ceil((rest - singles) / avg)
  end
  redis.call('XTRIM', key, 'MAXLEN', '~', x + older)
end
return new
