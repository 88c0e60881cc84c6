-- The signaler's rooms on Redis. One script, so that joins, relays and leaves of a room are
-- ordered and atomic across instances.
-- ARGV: namespace, calling instance, command, then the command's arguments.
-- Keys (under the namespace):
--   room:<room>      HASH  <peer> -> "<inst>|<conn>" for each member; "~exp" ticket expiry;
--                          "~bytes" bytes held
--   held:<room>      LIST  "<peer>\t<inst>|<conn>\t<text>" waiting for a partner
--   members:<inst>   SET   "<room>\t<peer>\t<conn>" of an instance (for cleanup)
--   inbox:<inst>     LIST  "<conn>\t<m|r>\t<text>": deliver text, or close as replaced
--   rooms            counter of rooms with a member
local ns, me, cmd = ARGV[1], ARGV[2], ARGV[3]

local function k(s) return ns .. ':' .. s end

local function split_location(loc)
  local bar = string.find(loc, '|', 1, true)
  return string.sub(loc, 1, bar - 1), string.sub(loc, bar + 1)
end

local function post(loc, kind, text)
  local inst, conn = split_location(loc)
  redis.call('RPUSH', k('inbox:' .. inst), conn .. '\t' .. kind .. '\t' .. text)
end

-- The other members of a room: a list of {peer, location}.
local function others(room, peer)
  local list = {}
  local flat = redis.call('HGETALL', k('room:' .. room))
  for i = 1, #flat, 2 do
    local field = flat[i]
    if field ~= peer and string.sub(field, 1, 1) ~= '~' then
      table.insert(list, { field, flat[i + 1] })
    end
  end
  return list
end

-- Removes held entries sent from `loc`, or (with `keep_from`) delivers to `to` those not from
-- `keep_from` and keeps the rest.
local function sweep_held(room, drop_loc, deliver_to, keep_from)
  local held_key = k('held:' .. room)
  local entries = redis.call('LRANGE', held_key, 0, -1)
  if #entries == 0 then return end
  redis.call('DEL', held_key)
  local bytes = 0
  for _, entry in ipairs(entries) do
    local t1 = string.find(entry, '\t', 1, true)
    local t2 = string.find(entry, '\t', t1 + 1, true)
    local from, loc, text = string.sub(entry, 1, t1 - 1), string.sub(entry, t1 + 1, t2 - 1), string.sub(entry, t2 + 1)
    if drop_loc and loc == drop_loc then
      -- dropped with its sender
    elseif deliver_to and from ~= keep_from then
      post(deliver_to, 'm', text)
    else
      redis.call('RPUSH', held_key, entry)
      bytes = bytes + #text
    end
  end
  redis.call('HSET', k('room:' .. room), '~bytes', bytes)
end

local function leave(room, peer, inst, conn)
  local key = k('room:' .. room)
  local loc = inst .. '|' .. conn
  if redis.call('HGET', key, peer) ~= loc then return 0 end
  redis.call('HDEL', key, peer)
  redis.call('SREM', k('members:' .. inst), room .. '\t' .. peer .. '\t' .. conn)
  sweep_held(room, loc, nil, nil)
  local rest = others(room, peer)
  local left = '{"type":"peer-left","peerId":"' .. peer .. '"}'
  for _, other in ipairs(rest) do post(other[2], 'm', left) end
  if #rest == 0 then
    redis.call('DEL', key, k('held:' .. room))
    redis.call('DECR', k('rooms'))
  end
  return 1
end

if cmd == 'cleanup' then
  local dead = ARGV[4]
  for _, entry in ipairs(redis.call('SMEMBERS', k('members:' .. dead))) do
    local t1 = string.find(entry, '\t', 1, true)
    local t2 = string.find(entry, '\t', t1 + 1, true)
    leave(string.sub(entry, 1, t1 - 1), string.sub(entry, t1 + 1, t2 - 1), dead, string.sub(entry, t2 + 1))
  end
  redis.call('DEL', k('members:' .. dead), k('inbox:' .. dead))
  redis.call('SREM', k('instances'), dead)
  return 'ok'
end

local room, peer, conn = ARGV[4], ARGV[5], ARGV[6]
local key = k('room:' .. room)
local loc = me .. '|' .. conn

if cmd == 'join' then
  local expires_at, capacity = tonumber(ARGV[7]), tonumber(ARGV[8])
  local current = redis.call('HGET', key, peer)
  local rest = others(room, peer)
  local peers = {}
  for _, other in ipairs(rest) do table.insert(peers, '"' .. other[1] .. '"') end
  local joined = '{"type":"joined","roomId":"' .. room .. '","peerId":"' .. peer .. '","peers":[' .. table.concat(peers, ',') .. ']}'
  if current == loc then
    post(loc, 'm', joined)
    return 'again'
  end
  if current then
    post(current, 'r', '')
    local old_inst, old_conn = split_location(current)
    redis.call('SREM', k('members:' .. old_inst), room .. '\t' .. peer .. '\t' .. old_conn)
    sweep_held(room, current, nil, nil)
  elseif #rest >= capacity then
    return 'room-full'
  end
  if redis.call('EXISTS', key) == 0 then redis.call('INCR', k('rooms')) end
  redis.call('HSET', key, peer, loc)
  redis.call('SADD', k('members:' .. me), room .. '\t' .. peer .. '\t' .. conn)
  local old_exp = tonumber(redis.call('HGET', key, '~exp') or '0')
  if expires_at > old_exp then redis.call('HSET', key, '~exp', expires_at) end
  post(loc, 'm', joined)
  local announce = '{"type":"peer-joined","peerId":"' .. peer .. '"}'
  for _, other in ipairs(rest) do post(other[2], 'm', announce) end
  if not current then sweep_held(room, nil, loc, peer) end
  return 'ok'
end

if cmd == 'relay' then
  local text, now, max_messages, max_bytes = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
  if redis.call('HGET', key, peer) ~= loc then return 'not-joined' end
  local rest = others(room, peer)
  for _, other in ipairs(rest) do post(other[2], 'm', text) end
  if #rest > 0 then return #rest end
  local held_key = k('held:' .. room)
  if now > tonumber(redis.call('HGET', key, '~exp') or '0') then
    -- Nobody can join with an expired ticket: what waits for them never leaves.
    redis.call('DEL', held_key)
    redis.call('HSET', key, '~bytes', 0)
  end
  local bytes = tonumber(redis.call('HGET', key, '~bytes') or '0')
  if redis.call('LLEN', held_key) >= max_messages or bytes + #text > max_bytes then
    return 'rate-limited'
  end
  redis.call('RPUSH', held_key, peer .. '\t' .. loc .. '\t' .. text)
  redis.call('HINCRBY', key, '~bytes', #text)
  return 0
end

if cmd == 'leave' then
  return leave(room, peer, me, conn)
end

return redis.error_reply('unknown command ' .. tostring(cmd))
