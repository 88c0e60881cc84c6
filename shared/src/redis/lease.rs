//! A lease: at most one instance at a time holds it, for [`super::LEASE_TTL`] after each
//! renewal. Its value carries a fencing token that grows with every new holder, so writes can
//! be made conditional on still holding it ([`super::fenced`]).

use redis::aio::ConnectionLike;

use super::scripts::{LEASE_ACQUIRE, LEASE_RELEASE, LEASE_RENEW};
use super::LEASE_TTL;

/// One lease, as one would-be holder sees it.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The key holding the lease's value.
    pub key: String,
    fence_key: String,
    holder: String,
}

impl Lease {
    /// The lease at `key` (its fence counter at `fence_key`, in the same slot), for `holder`.
    pub fn new(key: String, fence_key: String, holder: String) -> Self {
        Lease { key, fence_key, holder }
    }

    fn ttl_ms() -> u64 {
        u64::try_from(LEASE_TTL.as_millis()).unwrap_or(3_000)
    }

    /// Takes the lease if nobody holds it; the value we hold it by, if we do now.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn try_acquire<C: ConnectionLike + Send>(&self, conn: &mut C) -> redis::RedisResult<Option<String>> {
        let (ours, value): (i64, String) = LEASE_ACQUIRE
            .key(&self.key)
            .key(&self.fence_key)
            .arg(&self.holder)
            .arg(Self::ttl_ms())
            .invoke_async(conn)
            .await?;
        Ok((ours == 1).then_some(value))
    }

    /// Renews the lease held by `value`; false when it is not ours any more.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn renew<C: ConnectionLike + Send>(&self, conn: &mut C, value: &str) -> redis::RedisResult<bool> {
        let renewed: i64 = LEASE_RENEW.key(&self.key).arg(value).arg(Self::ttl_ms()).invoke_async(conn).await?;
        Ok(renewed == 1)
    }

    /// Gives the lease back (at shutdown), so another instance takes over at once.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn release<C: ConnectionLike + Send>(&self, conn: &mut C, value: &str) -> redis::RedisResult<()> {
        let _: i64 = LEASE_RELEASE.key(&self.key).arg(value).invoke_async(conn).await?;
        Ok(())
    }
}
