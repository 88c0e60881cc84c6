//! The only Lua there is: small, generic, atomic steps. None of them knows a rule of the
//! product; they take a lease, renew or give it back, claim a hash field, and run a batch of
//! writes only while the caller still holds its lease (fencing).

use std::sync::LazyLock;

use redis::Script;

/// Takes a lease if nobody holds it: `KEYS[1]` the lease, `KEYS[2]` its fence counter;
/// `ARGV[1]` the holder, `ARGV[2]` the time to live in ms. Returns the lease's value
/// (`"<holder> <fence>"`), and whether it is ours now (1) or someone else's (0).
pub static LEASE_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('GET', KEYS[1])
if current then return {0, current} end
local fence = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. ' ' .. fence
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value}
",
    )
});

/// Renews a lease we hold: `KEYS[1]` the lease; `ARGV[1]` its value, `ARGV[2]` the time to
/// live in ms. Returns 1, or 0 when it is not ours any more.
pub static LEASE_RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Gives a lease back: `KEYS[1]` the lease; `ARGV[1]` its value. Returns 1 if it was ours.
pub static LEASE_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
",
    )
});

/// Claims a hash field: `KEYS[1]` the hash; `ARGV[1]` the field, `ARGV[2]` the value it must
/// have now (empty: absent), `ARGV[3]` the claimant, `ARGV[4]` the field counting fences. On
/// success the field becomes `"<claimant> <fence>"` with the next fence. Returns the field's
/// value after the call, and whether the claim succeeded.
pub static HASH_CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then return {0, current} end
local fence = redis.call('HINCRBY', KEYS[1], ARGV[4], 1)
local value = ARGV[3] .. ' ' .. fence
redis.call('HSET', KEYS[1], ARGV[1], value)
return {1, value}
",
    )
});

/// Runs a batch of writes only while a fence still holds: `KEYS[1]` the fence (a string, or a
/// hash when `ARGV[1]` names a field), `KEYS[2..]` the keys written; `ARGV[2]` the value the
/// fence must have; then each write as `<command> <key index> <argument count> <arguments>`.
/// Fails with `FENCED` (and writes nothing) when the fence moved on.
pub static FENCED_BATCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current
if ARGV[1] == '' then current = redis.call('GET', KEYS[1]) else current = redis.call('HGET', KEYS[1], ARGV[1]) end
if current ~= ARGV[2] then return redis.error_reply('FENCED the fence moved on') end
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i + 2])
  redis.call(ARGV[i], KEYS[tonumber(ARGV[i + 1])], unpack(ARGV, i + 3, i + 2 + n))
  i = i + 3 + n
end
return 'OK'
",
    )
});
