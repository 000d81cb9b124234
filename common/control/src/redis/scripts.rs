//! The Lua scripts that make one trait call one atomic round trip.
//!
//! Values are JSON written by this crate, but read back as untrusted: a
//! script decodes them with `pcall(cjson.decode, …)` and treats what it
//! cannot read as a live record held by someone else (never as free).
//! Scripts compute some key names from the prefix passed in `ARGV`; that is
//! fine on one primary (standalone or Sentinel) and is why Redis Cluster is
//! not supported.

use ::redis::Script;

/// `create_key`. KEYS: key index hash, the stream's key hash. ARGV: id,
/// stream, JSON, now (ms), `{prefix}keys:`. Returns 1 (created) or 0 (a
/// live key has this id). A key with this id that has expired is replaced,
/// wherever it was.
const CREATE_KEY: &str = r"
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local hash = ARGV[5] .. old
  local raw = redis.call('HGET', hash, ARGV[1])
  if raw then
    local ok, key = pcall(cjson.decode, raw)
    local expired = ok and type(key) == 'table' and type(key.expires_at) == 'number'
      and key.expires_at <= tonumber(ARGV[4])
    if not expired then return 0 end
    redis.call('HDEL', hash, ARGV[1])
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
";

/// `revoke_key`. KEYS: key index hash. ARGV: id, `{prefix}keys:`, now (ms).
/// Deletes the key; returns 1 if it was live, 0 if unknown or expired.
const REVOKE_KEY: &str = r"
local stream = redis.call('HGET', KEYS[1], ARGV[1])
if not stream then return 0 end
local hash = ARGV[2] .. stream
local raw = redis.call('HGET', hash, ARGV[1])
redis.call('HDEL', hash, ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
if not raw then return 0 end
local ok, key = pcall(cjson.decode, raw)
if ok and type(key) == 'table' and type(key.expires_at) == 'number'
  and key.expires_at <= tonumber(ARGV[3]) then
  return 0
end
return 1
";

/// `keys`. KEYS: key index hash. ARGV: `{prefix}keys:`, now (ms). Returns
/// every stored key's JSON; drops expired keys and index entries whose
/// key is gone.
const LIST_KEYS: &str = r"
local index = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #index, 2 do
  local id, hash = index[i], ARGV[1] .. index[i + 1]
  local raw = redis.call('HGET', hash, id)
  if not raw then
    redis.call('HDEL', KEYS[1], id)
  else
    local ok, key = pcall(cjson.decode, raw)
    if ok and type(key) == 'table' and type(key.expires_at) == 'number'
      and key.expires_at <= tonumber(ARGV[2]) then
      redis.call('HDEL', hash, id)
      redis.call('HDEL', KEYS[1], id)
    else
      out[#out + 1] = raw
    end
  end
end
return out
";

/// `nodes`, `placements`, `sessions`. KEYS: the index set. ARGV: the
/// record key prefix (`{prefix}node:`, …). Returns the JSON of every record
/// still alive; removes the ids whose record expired from the index.
const LIST_RECORDS: &str = r"
local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, id in ipairs(ids) do
  local raw = redis.call('GET', ARGV[1] .. id)
  if raw then out[#out + 1] = raw else redis.call('SREM', KEYS[1], id) end
end
return out
";

/// `claim_stream`. KEYS: the placement key, the placement index set.
/// ARGV: session id, JSON, lease (ms), stream. Returns `{1, ''}` (claimed
/// or renewed), `{0, holder node}` (held by another session) or `{2, ''}`
/// (the stored holder cannot be read).
const CLAIM: &str = r"
local raw = redis.call('GET', KEYS[1])
if raw then
  local ok, held = pcall(cjson.decode, raw)
  if not ok or type(held) ~= 'table' or type(held.session_id) ~= 'string' then
    return {2, ''}
  end
  if held.session_id ~= ARGV[1] then
    local node = held.node_id
    if type(node) ~= 'string' then node = '' end
    return {0, node}
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return {1, ''}
";

/// `release_stream`. KEYS: the placement key, the placement index set.
/// ARGV: session id, stream. Deletes the placement if that session holds
/// it (compare and delete); returns 1 if it did.
const RELEASE: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('SREM', KEYS[2], ARGV[2])
  return 0
end
local ok, held = pcall(cjson.decode, raw)
if ok and type(held) == 'table' and held.session_id == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  return 1
end
return 0
";

/// The scripts, hashed once (`EVALSHA`; the `redis` crate loads a script
/// the server does not know, e.g. after a restart, and retries once).
pub(super) struct Scripts {
    pub(super) create_key: Script,
    pub(super) revoke_key: Script,
    pub(super) list_keys: Script,
    pub(super) list_records: Script,
    pub(super) claim: Script,
    pub(super) release: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Scripts {
            create_key: Script::new(CREATE_KEY),
            revoke_key: Script::new(REVOKE_KEY),
            list_keys: Script::new(LIST_KEYS),
            list_records: Script::new(LIST_RECORDS),
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
        }
    }
}
