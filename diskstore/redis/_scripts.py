"""The Lua scripts that make each multi-step write one atomic server-side operation.

Redis runs a script without interleaving any other command, so a script is how a write that
touches the item, its expiry and its tag set stays all-or-nothing without a round trip
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

# An item is one string (see ``_codec``): ``split`` reads its kind, mode, extras and value,
# ``join`` writes them back. A tag or function set lives as long as its longest-lived
# member, so the sets of expiring items do not accumulate.
ITEM_LIB = """
local function be32(v, i)
  local a, b, c, d = string.byte(v, i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
local function u32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
                     math.floor(n / 256) % 256, n % 256)
end
local function split(v)
  local b = string.byte(v, 1)
  if (b >= 48 and b <= 57) or b == 45 then return 'i', '', '', '', '', v end
  local kind = string.lower(string.sub(v, 1, 1))
  local pos, mode = 2, ''
  if kind == 'd' then mode = string.sub(v, 2, 3); pos = 4 end
  if b > 90 then return kind, mode, '', '', '', string.sub(v, pos) end
  local elen, tlen, flen = string.byte(v, pos), be32(v, pos + 1), be32(v, pos + 5)
  local at = pos + 9
  local expire = string.sub(v, at, at + elen - 1)
  at = at + elen
  local tag = string.sub(v, at, at + tlen - 1)
  at = at + tlen
  local fn = string.sub(v, at, at + flen - 1)
  return kind, mode, expire, tag, fn, string.sub(v, at + flen)
end
local function join(kind, mode, expire, tag, fn, data)
  if expire == '' and tag == '' and fn == '' then
    if kind == 'i' then return data end
    return kind .. mode .. data
  end
  return string.upper(kind) .. mode .. string.char(#expire) .. u32(#tag) .. u32(#fn)
         .. expire .. tag .. fn .. data
end
local function index_add(index, item, pexpireat)
  local existed = redis.call('EXISTS', index)
  redis.call('SADD', index, item)
  if pexpireat == '' then
    redis.call('PERSIST', index)
  else
    local at = redis.call('PEXPIRETIME', index)
    if existed == 0 or (at >= 0 and at < tonumber(pexpireat)) then
      redis.call('PEXPIREAT', index, pexpireat)
    end
  end
end
local function store(item, blob, pexpireat)
  if pexpireat == '' then
    redis.call('SET', item, blob)
  else
    redis.call('SET', item, blob, 'PXAT', pexpireat)
  end
end
"""

#: KEYS: item, then the sets to add it to (its tag's, its function's; never on a cluster,
#: where they are in other slots). ARGV: the item's string, pexpireat in ms or '',
#: only_if_missing ('1' or ''). Returns 1 if stored, 0 if the key existed and
#: only_if_missing.
SET = (
    _DENY_OOM
    + ITEM_LIB
    + """
local item = KEYS[1]
if ARGV[3] == '1' and redis.call('EXISTS', item) == 1 then return 0 end
store(item, ARGV[1], ARGV[2])
for i = 2, #KEYS do index_add(KEYS[i], item, ARGV[2]) end
return 1
"""
)

#: KEYS: an index set (a tag's or a memoized function's). ARGV: the item key, its pexpireat
#: in ms or ''. Adds the item; the set lives as long as its longest-lived member.
INDEX_ADD = (
    _DENY_OOM
    + ITEM_LIB
    + """
index_add(KEYS[1], ARGV[1], ARGV[2])
return 1
"""
)

#: KEYS: item. ARGV: 't' (tag) or 'f' (function), a value, '1' to delete or '' to count.
#: Returns 1 if the item holds that tag (function), deleting it when asked.
DELETE_IF = (
    ITEM_LIB
    + """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local kind, mode, expire, tag, fn = split(v)
local found = tag
if ARGV[1] == 'f' then found = fn end
if found ~= ARGV[2] then return 0 end
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
return 1
"""
)

#: KEYS: item. ARGV: expire time (repr) or '', pexpireat ms or ''. Returns 1 if touched.
TOUCH = (
    _DENY_OOM
    + ITEM_LIB
    + """
local item = KEYS[1]
local v = redis.call('GET', item)
if not v then return 0 end
local kind, mode, expire, tag, fn, data = split(v)
store(item, join(kind, mode, ARGV[1], tag, fn, data), ARGV[2])
return 1
"""
)

#: KEYS: item. ARGV: delta, default ('' for none). Returns {status, value}: status 1 is
#: the new value, 0 a missing key without default, -1 a value that is not a bare native
#: int (one with extras, or not an int: the caller adds in Python).
INCR = (
    _DENY_OOM
    + """local item = KEYS[1]
local v = redis.call('GET', item)
if not v then
  if ARGV[2] == '' then return {0, 0} end
  redis.call('SET', item, ARGV[2])
elseif not string.find(v, '^%-?%d+$') then
  return {-1, 0}
end
-- Lua numbers are doubles: return the decimal string, exact for every 64-bit integer.
redis.call('INCRBY', item, ARGV[1])
return {1, redis.call('GET', item)}
"""
)

#: KEYS: queue index (sorted set), item[, tag set] (see SET). ARGV: expected edge score or
#: '', new score, side ('back'/'front'), the item's string, pexpireat ms or ''.
#: Returns 1 if pushed, 0 if the edge moved or was stale (retry), -1 if a plain item sits
#: where the queue would grow.
PUSH = (
    _DENY_OOM
    + ITEM_LIB
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
store(item, ARGV[4], ARGV[5])
if KEYS[3] then index_add(KEYS[3], item, ARGV[5]) end
redis.call('ZADD', index, ARGV[2], item)
return 1
"""
)

#: KEYS: queue index. ARGV: side ('back'/'front'), remove ('1'/'0'). Returns the item key
#: and its string {key, item} of the first live item at that side, or nil. Members whose
#: items Redis expired or evicted are dropped on the way.
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
  local v = redis.call('GET', item)
  if v then
    if ARGV[2] == '1' then
      redis.call('DEL', item)
      redis.call('ZREM', index, item)
    end
    return {item, v}
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
