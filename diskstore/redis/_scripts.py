"""The Lua scripts that make each multi-step write one atomic server-side operation.

Redis runs a script without interleaving any other command, so a script is how a write that
touches the item hash, its expiry and its tag set stays all-or-nothing without a round trip
per step. Keys are passed in ``KEYS``. On a Redis Cluster a script may only touch keys of one
hash slot, and an item's slot is not its tag set's or its function's: there the write
scripts get the item's key alone (the caller then adds the item to those sets with
``INDEX_ADD``, after the write), and bulk removal checks each item with ``DELETE_IF`` on
the item's own slot. A queue's index and items share a slot (see ``_codec``).
"""

from __future__ import annotations

__all__ = [
    "DELETE_IF",
    "INCR",
    "INDEX_ADD",
    "POP_QUEUE",
    "PUSH",
    "RELEASE",
    "RENEW",
    "SET",
    "TOUCH",
]

# A script that declares itself (a shebang line, Redis 7) is refused as a whole while the
# server is over ``maxmemory`` with ``noeviction``; an undeclared one would be let through
# because its first command (DEL) is allowed. Scripts that only delete stay undeclared, so
# a full server can still be emptied.
_DENY_OOM = "#!lua\n"

# Writes an item hash from ARGV[i..]: mode, value, then (only when the item has an expiry
# or a tag) pexpireat in ms, the expire time, the encoded tag, each '' when absent. A plain
# set thus sends two arguments: redis-py's packing costs grow with their number. A tag
# set lives as long as its longest-lived member, so tag sets of expiring items do not
# accumulate. ``tkey`` is nil when the caller maintains the tag set itself (a cluster).
_WRITE_ITEM = """
local function index_add(tkey, item, pexpireat)
  local existed = redis.call('EXISTS', tkey)
  redis.call('SADD', tkey, item)
  if pexpireat == '' then
    redis.call('PERSIST', tkey)
  else
    local at = redis.call('PEXPIRETIME', tkey)
    if existed == 0 or (at >= 0 and at < tonumber(pexpireat)) then
      redis.call('PEXPIREAT', tkey, pexpireat)
    end
  end
end
local function write_item(item, tkey, a, i)
  redis.call('HSET', item, 'm', a[i], 'v', a[i + 1])
  local pexpireat = a[i + 2] or ''
  if pexpireat ~= '' then
    redis.call('HSET', item, 'e', a[i + 3])
    redis.call('PEXPIREAT', item, pexpireat)
  end
  if (a[i + 4] or '') ~= '' then
    redis.call('HSET', item, 't', a[i + 4])
    if tkey then index_add(tkey, item, pexpireat) end
  end
end
"""

#: KEYS: item[, tag set][, function set] (the sets only when the script is to add the item
#: to them: never on a cluster). ARGV: the item (see ``write_item``), then only_if_missing
#: ('1' or ''), then the memoized function that stored it, if one did. Returns 1 if stored,
#: 0 if the key existed and only_if_missing.
SET = (
    _DENY_OOM
    + _WRITE_ITEM
    + """
local item = KEYS[1]
if ARGV[6] == '1' and redis.call('EXISTS', item) == 1 then return 0 end
redis.call('DEL', item)
local next_key = 2
local tkey = nil
if (ARGV[5] or '') ~= '' and KEYS[next_key] then
  tkey = KEYS[next_key]
  next_key = next_key + 1
end
write_item(item, tkey, ARGV, 1)
if (ARGV[7] or '') ~= '' then
  redis.call('HSET', item, 'f', ARGV[7])
  if KEYS[next_key] then index_add(KEYS[next_key], item, ARGV[3] or '') end
end
return 1
"""
)

#: KEYS: an index set (a tag's or a memoized function's). ARGV: the item key, its pexpireat
#: in ms or ''. Adds the item; the set lives as long as its longest-lived member.
INDEX_ADD = (
    _DENY_OOM
    + _WRITE_ITEM
    + """
index_add(KEYS[1], ARGV[1], ARGV[2])
return 1
"""
)

#: KEYS: item. ARGV: a field ('t' or 'f') and a value. Deletes the item only while the field
#: holds the value; returns 1 if it did.
DELETE_IF = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: KEYS: item. ARGV: expire time (repr) or '', pexpireat ms or ''. Returns 1 if touched.
TOUCH = (
    _DENY_OOM
    + """local item = KEYS[1]
if redis.call('EXISTS', item) == 0 then return 0 end
if ARGV[1] == '' then
  redis.call('HDEL', item, 'e')
  redis.call('PERSIST', item)
else
  redis.call('HSET', item, 'e', ARGV[1])
  redis.call('PEXPIREAT', item, ARGV[2])
end
return 1
"""
)

#: KEYS: item. ARGV: delta, default ('' for none). Returns {status, value}: status 1 is
#: the new value, 0 a missing key without default, -1 a value that is not a native int.
INCR = (
    _DENY_OOM
    + """local item = KEYS[1]
local mode = redis.call('HGET', item, 'm')
if not mode then
  if ARGV[2] == '' then return {0, 0} end
  redis.call('DEL', item)
  redis.call('HSET', item, 'm', 'i', 'v', ARGV[2])
end
if mode and mode ~= 'i' then return {-1, mode} end
-- Lua numbers are doubles: return the decimal string, exact for every 64-bit integer.
redis.call('HINCRBY', item, 'v', ARGV[1])
return {1, redis.call('HGET', item, 'v')}
"""
)

#: KEYS: queue index (sorted set), item[, tag set] (see SET). ARGV: expected edge score or '', new
#: score, side ('back'/'front'), then the item (see ``write_item``).
#: Returns 1 if pushed, 0 if the edge moved or was stale (retry), -1 if a plain item sits
#: where the queue would grow.
PUSH = (
    _DENY_OOM
    + _WRITE_ITEM
    + """
local index = KEYS[1]
local edge
if ARGV[3] == 'back' then
  edge = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
else
  edge = redis.call('ZRANGE', index, 0, 0, 'WITHSCORES')
end
if edge[1] and redis.call('EXISTS', edge[1]) == 0 then
  redis.call('ZREM', index, edge[1])  -- deleted, expired or evicted: not the edge any more
  return 0
end
local current = edge[2] or ''
if current ~= ARGV[1] then return 0 end
local item = KEYS[2]
if redis.call('EXISTS', item) == 1 then return -1 end
write_item(item, KEYS[3], ARGV, 4)
redis.call('ZADD', index, ARGV[2], item)
return 1
"""
)

#: KEYS: queue index. ARGV: side ('back'/'front'), remove ('1'/'0'). Returns the item key
#: and its fields {key, m, v, e, t} of the first live item at that side, or nil. Members
#: whose items Redis expired or evicted are dropped on the way.
POP_QUEUE = """
local index = KEYS[1]
while true do
  local edge
  if ARGV[1] == 'back' then
    edge = redis.call('ZRANGE', index, -1, -1)
  else
    edge = redis.call('ZRANGE', index, 0, 0)
  end
  local item = edge[1]
  if not item then return nil end
  local fields = redis.call('HMGET', item, 'm', 'v', 'e', 't')
  if fields[1] then
    if ARGV[2] == '1' then
      redis.call('DEL', item)
      redis.call('ZREM', index, item)
    end
    return {item, fields[1], fields[2], fields[3] or false, fields[4] or false}
  end
  redis.call('ZREM', index, item)
end
"""

#: KEYS: lock. ARGV: token. Deletes the lock only while it still holds this token.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: KEYS: lock. ARGV: token, milliseconds. Extends the lock only while it holds the token.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
