-- The matchmaker's shared state on Redis. One script, so that every rule runs atomically.
-- ARGV: namespace, calling instance, command, then the command's arguments.
-- Keys (under the namespace):
--   queue            ZSET  waiting clients, scored by Redis time in microseconds (FIFO)
--   client:<id>      HASH  inst, and room + partner while matched
--   clients:<inst>   SET   the clients connected to an instance (for cleanup)
--   online, rooms    counters
--   inbox:<inst>     LIST  "<client>\t<event>" for the instance holding the client's socket
--   alive:<inst>     set by the instance's heartbeat, expires when it dies
local ns, me, cmd = ARGV[1], ARGV[2], ARGV[3]

local function k(s) return ns .. ':' .. s end

local function push(client, event)
  local inst = redis.call('HGET', k('client:' .. client), 'inst')
  if inst then redis.call('RPUSH', k('inbox:' .. inst), client .. '\t' .. event) end
end

local function now_micros()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function enqueue(client)
  if not redis.call('ZSCORE', k('queue'), client) then
    redis.call('ZADD', k('queue'), now_micros(), client)
  end
  push(client, 'queued')
end

local function alive(client)
  local inst = redis.call('HGET', k('client:' .. client), 'inst')
  return inst and redis.call('EXISTS', k('alive:' .. inst)) == 1
end

-- Pairs the two longest-waiting clients while two wait, dropping entries of dead instances.
local function pair(rooms)
  local used = 0
  while used < #rooms and redis.call('ZCARD', k('queue')) >= 2 do
    local two = redis.call('ZRANGE', k('queue'), 0, 1)
    local a, b = two[1], two[2]
    if not alive(a) then
      redis.call('ZREM', k('queue'), a)
    elseif not alive(b) then
      redis.call('ZREM', k('queue'), b)
    else
      redis.call('ZREM', k('queue'), a, b)
      used = used + 1
      local room = rooms[used]
      redis.call('HSET', k('client:' .. a), 'room', room, 'partner', b)
      redis.call('HSET', k('client:' .. b), 'room', room, 'partner', a)
      redis.call('INCR', k('rooms'))
      redis.call('INCR', k('matches'))
      push(a, 'matched\t' .. room .. '\t' .. b .. '\t1')
      push(b, 'matched\t' .. room .. '\t' .. a .. '\t0')
    end
  end
end

-- Ends the client's match, if any; tells the partner and returns it.
local function end_match(client)
  local record = k('client:' .. client)
  local partner = redis.call('HGET', record, 'partner')
  if not partner then return nil end
  local room = redis.call('HGET', record, 'room')
  redis.call('HDEL', record, 'room', 'partner')
  redis.call('HDEL', k('client:' .. partner), 'room', 'partner')
  redis.call('DECR', k('rooms'))
  push(partner, 'partner-left\t' .. room)
  return partner
end

local function leave(client, requeue)
  redis.call('ZREM', k('queue'), client)
  local partner = end_match(client)
  if partner and requeue then enqueue(partner) end
end

local function disconnect(client, inst, requeue)
  if redis.call('EXISTS', k('client:' .. client)) == 0 then return end
  leave(client, requeue)
  redis.call('DEL', k('client:' .. client))
  redis.call('SREM', k('clients:' .. inst), client)
  redis.call('DECR', k('online'))
end

if cmd == 'connect' then
  local client = ARGV[4]
  if redis.call('EXISTS', k('client:' .. client)) == 0 then
    redis.call('HSET', k('client:' .. client), 'inst', me)
    redis.call('SADD', k('clients:' .. me), client)
    redis.call('INCR', k('online'))
  end
  return 'ok'
end

local client, requeue, rooms = ARGV[4], ARGV[5] == '1', { ARGV[6], ARGV[7] }

if cmd == 'cleanup' then
  -- ARGV[4] is a dead instance here, not a client.
  local dead = client
  for _, c in ipairs(redis.call('SMEMBERS', k('clients:' .. dead))) do
    disconnect(c, dead, requeue)
  end
  redis.call('DEL', k('clients:' .. dead), k('inbox:' .. dead))
  redis.call('SREM', k('instances'), dead)
  pair(rooms)
  return 'ok'
end

if cmd == 'disconnect' then
  disconnect(client, me, requeue)
  pair(rooms)
  return 'ok'
end

if redis.call('EXISTS', k('client:' .. client)) == 0 then
  return 'gone'
end

if cmd == 'available' then
  if redis.call('HEXISTS', k('client:' .. client), 'partner') == 1 then
    push(client, 'already-matched')
    return 'ok'
  end
  enqueue(client)
elseif cmd == 'next' then
  local partner = end_match(client)
  enqueue(client)
  if partner and requeue then enqueue(partner) end
elseif cmd == 'leave' then
  leave(client, requeue)
  push(client, 'left')
else
  return redis.error_reply('unknown command ' .. tostring(cmd))
end
pair(rooms)
return 'ok'
