//! The Lua scripts behind every Redis change that reads before it writes. A script runs
//! atomically on the server, so a check and its write are one step, with no lock and no race,
//! in one round trip.
//!
//! Invariants:
//! - The phase rules are not written twice: the Lua tables of which phase may become which,
//!   which phases are reusable and which finished are generated from [`Phase`].
//! - Scripts touch only keys under [`PREFIX`]. Some derive keys from stored values (the bake an
//!   identity is bound to), so the engine needs a standalone Redis, not a Cluster.

use crate::bake::{Cause, Phase};
use redis::Script;

/// Every key kiln writes starts with this.
pub(super) const PREFIX: &str = "kiln:";

/// The scripts, compiled once per store (`EVALSHA`, reloaded by the client on `NOSCRIPT`).
pub(super) struct Scripts {
    pub create: Script,
    pub by_identity: Script,
    pub transition: Script,
    pub append_log: Script,
    pub unbind: Script,
    pub delete_executions: Script,
    pub unfinished: Script,
    pub older_than: Script,
    pub instances: Script,
    pub claim_orphans: Script,
    pub delete_finished: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        let lua = |body: &str| Script::new(&expand(body));
        Scripts {
            create: lua(CREATE),
            by_identity: lua(BY_IDENTITY),
            transition: lua(TRANSITION),
            append_log: lua(APPEND_LOG),
            unbind: lua(UNBIND),
            delete_executions: lua(DELETE_EXECUTIONS),
            unfinished: lua(UNFINISHED),
            older_than: lua(OLDER_THAN),
            instances: lua(INSTANCES),
            claim_orphans: lua(CLAIM_ORPHANS),
            delete_finished: lua(DELETE_FINISHED),
        }
    }
}

/// Fills in the key prefix and the phase rules.
fn expand(body: &str) -> String {
    let names = |keep: fn(Phase) -> bool| {
        let set: Vec<String> = Phase::ALL
            .into_iter()
            .filter(|p| keep(*p))
            .map(|p| format!("{}=true", p.as_str()))
            .collect();
        format!("{{{}}}", set.join(","))
    };
    let allowed: Vec<String> = Phase::ALL
        .into_iter()
        .map(|from| {
            let to: Vec<String> = Phase::ALL
                .into_iter()
                .filter(|to| from.can_become(*to))
                .map(|to| format!("{}=true", to.as_str()))
                .collect();
            format!("{}={{{}}}", from.as_str(), to.join(","))
        })
        .collect();
    let prelude = format!(
        "local P = '{PREFIX}'\nlocal ALLOWED = {{{}}}\nlocal REUSABLE = {}\nlocal FINISHED = {}\n",
        allowed.join(","),
        names(Phase::is_reusable),
        names(Phase::is_finished),
    );
    let body = body
        .replace("$RUNNING", Phase::Running.as_str())
        .replace("$FAILED", Phase::Failed.as_str())
        .replace("$ORPHANED", Cause::Orphaned.as_str());
    prelude + &body
}

/// KEYS: identity, bake, unfinished, execution set, the age index. ARGV: reuse, id, created_ms,
/// phase, has-execution, the bake's age-index member, then the record's field/value pairs.
/// Returns `{'existing', field, value, …}` or `{'new'}`.
const CREATE: &str = r"
if ARGV[1] == '1' then
  local bound = redis.call('GET', KEYS[1])
  if bound then
    local h = P .. 'bake:' .. bound
    local phase = redis.call('HGET', h, 'phase')
    if phase and REUSABLE[phase] then
      local r = redis.call('HGETALL', h)
      table.insert(r, 1, 'existing')
      return r
    end
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('a bake with id ' .. ARGV[2] .. ' already exists')
end
redis.call('HSET', KEYS[2], unpack(ARGV, 7))
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[5], 0, ARGV[6])
if not FINISHED[ARGV[4]] then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2]) end
if ARGV[5] == '1' then redis.call('SADD', KEYS[4], ARGV[2]) end
return {'new'}
";

/// KEYS: identity. Returns the bound bake's hash, or nothing.
const BY_IDENTITY: &str = r"
local id = redis.call('GET', KEYS[1])
if not id then return {} end
return redis.call('HGETALL', P .. 'bake:' .. id)
";

/// KEYS: bake, unfinished. ARGV: phase, now_ms, id, then the field/value pairs the transition
/// sets. Returns the updated hash, or nothing when the bake is unknown or the move not allowed.
const TRANSITION: &str = r"
local from = redis.call('HGET', KEYS[1], 'phase')
local to = ARGV[1]
if not from or not ALLOWED[from] or not ALLOWED[from][to] then return {} end
redis.call('HSET', KEYS[1], 'phase', to, 'updated_ms', ARGV[2], unpack(ARGV, 4))
if to == '$RUNNING' then redis.call('HSET', KEYS[1], 'started_ms', ARGV[2]) end
if FINISHED[to] then redis.call('ZREM', KEYS[2], ARGV[3]) end
return redis.call('HGETALL', KEYS[1])
";

/// KEYS: bake, log. ARGV: chunk. Nothing is stored for an unknown bake.
const APPEND_LOG: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('APPEND', KEYS[2], ARGV[1])
";

/// KEYS: bake. ARGV: id. Removes the identity's binding only if it still names this bake.
const UNBIND: &str = r"
local ident = redis.call('HGET', KEYS[1], 'identity')
if not ident then return 0 end
local k = P .. 'identity:' .. ident
if redis.call('GET', k) == ARGV[1] then redis.call('DEL', k) return 1 end
return 0
";

/// KEYS: execution sets. Deletes their bakes with their bindings, logs and images; returns
/// how many bakes were deleted.
const DELETE_EXECUTIONS: &str = r"
local n = 0
for _, set in ipairs(KEYS) do
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local h = P .. 'bake:' .. id
    local ident = redis.call('HGET', h, 'identity')
    if ident then
      local k = P .. 'identity:' .. ident
      if redis.call('GET', k) == id then redis.call('DEL', k) end
      local imgs = P .. 'bake-images:' .. id
      for _, m in ipairs(redis.call('SMEMBERS', imgs)) do
        local pair = cjson.decode(m)
        local ik = P .. 'images:' .. pair[1]
        if redis.call('HGET', ik, pair[2]) == id then redis.call('HDEL', ik, pair[2]) end
      end
      local ms = redis.call('HGET', h, 'created_ms') or ''
      redis.call('ZREM', P .. 'bakes', string.rep('0', 20 - #ms) .. ms .. ':' .. id)
      redis.call('DEL', imgs, P .. 'log:' .. id, h)
      redis.call('ZREM', P .. 'unfinished', id)
      n = n + 1
    end
  end
  redis.call('DEL', set)
end
return n
";

/// ARGV: bake ids. Deletes those that are finished (a finished bake never changes phase again),
/// with their bindings, logs, images and execution membership; returns the deleted ids.
const DELETE_FINISHED: &str = r"
local out = {}
for _, id in ipairs(ARGV) do
  local h = P .. 'bake:' .. id
  local f = redis.call('HMGET', h, 'phase', 'identity', 'execution_id')
  if f[1] and FINISHED[f[1]] then
    local k = P .. 'identity:' .. f[2]
    if redis.call('GET', k) == id then redis.call('DEL', k) end
    if f[3] then redis.call('SREM', P .. 'execution:' .. f[3], id) end
    local imgs = P .. 'bake-images:' .. id
    for _, m in ipairs(redis.call('SMEMBERS', imgs)) do
      local pair = cjson.decode(m)
      local ik = P .. 'images:' .. pair[1]
      if redis.call('HGET', ik, pair[2]) == id then redis.call('HDEL', ik, pair[2]) end
    end
    redis.call('DEL', imgs, P .. 'log:' .. id, h)
    out[#out + 1] = id
  end
end
return out
";

/// KEYS: unfinished. Returns each unfinished bake's hash, oldest first.
const UNFINISHED: &str = r"
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local r = redis.call('HGETALL', P .. 'bake:' .. id)
  if #r > 0 then out[#out + 1] = r end
end
return out
";

/// KEYS: the age index. ARGV: the upper bound (`+`, or `(` and a member), how many. Returns, newest
/// first, `{member, field, value, …}` per bake (just `{member}` for a bake whose hash is gone;
/// its member is dropped from the index then, whichever path deleted the bake).
const OLDER_THAN: &str = r"
local out = {}
local ms = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], '-', 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(ms) do
  local r = redis.call('HGETALL', P .. 'bake:' .. string.sub(m, 22))
  if #r == 0 then redis.call('ZREM', KEYS[1], m) end
  table.insert(r, 1, m)
  out[#out + 1] = r
end
return out
";

/// KEYS: instances. Returns `{id, heartbeat, id, heartbeat, …}` for live instances, and
/// forgets those whose heartbeat expired.
const INSTANCES: &str = r"
local out = {}
for _, inst in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local beat = redis.call('GET', P .. 'heartbeat:' .. inst)
  if beat then
    out[#out + 1] = inst
    out[#out + 1] = beat
  else
    redis.call('SREM', KEYS[1], inst)
  end
end
return out
";

/// KEYS: unfinished. ARGV: now_ms, claimer. Settles every unfinished bake whose owner has no
/// live heartbeat; returns their hashes.
const CLAIM_ORPHANS: &str = r"
local settled = {}
local alive = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = P .. 'bake:' .. id
  local owner = redis.call('HGET', h, 'instance_id')
  local phase = redis.call('HGET', h, 'phase')
  if not owner or not phase or FINISHED[phase] then
    redis.call('ZREM', KEYS[1], id)
  else
    if alive[owner] == nil then
      alive[owner] = redis.call('EXISTS', P .. 'heartbeat:' .. owner) == 1
    end
    if not alive[owner] and ALLOWED[phase]['$FAILED'] then
      local err
      if phase == '$RUNNING' then
        err = 'orphaned: kiln instance ' .. owner .. ' stopped heart-beating while running ' ..
          'this bake (for longer than kiln.ha.orphanTimeout); its Packer run is out of reach, ' ..
          'and a builder instance it started may need cleaning up; settled by ' .. ARGV[2] ..
          '; bake again'
      else
        err = 'orphaned: kiln instance ' .. owner .. ' stopped heart-beating before this ' ..
          'queued bake started; settled by ' .. ARGV[2] .. '; bake again'
      end
      redis.call('HSET', h, 'phase', '$FAILED', 'cause', '$ORPHANED', 'error', err,
        'updated_ms', ARGV[1])
      redis.call('ZREM', KEYS[1], id)
      redis.call('APPEND', P .. 'log:' .. id, 'kiln: ' .. err .. '\n')
      settled[#settled + 1] = redis.call('HGETALL', h)
    end
  end
end
return settled
";
