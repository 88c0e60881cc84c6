//! A batch of writes that only the holder of a lease can make: it runs as one atomic step,
//! and not at all once the lease has moved on (so an owner that was replaced while it could
//! not see Redis writes nothing stale).

use redis::aio::ConnectionLike;

use super::scripts::FENCED_BATCH;

/// Writes per step of a list or hash, so no Lua call unpacks too many arguments at once.
pub const MAX_ARGS_PER_WRITE: usize = 1_000;

/// Why a batch did not run.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The lease moved on: the caller is no longer the owner.
    #[error("fenced: the lease moved on")]
    Fenced,
    /// Redis could not be reached, or refused.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Writes to run under a fence.
#[derive(Debug)]
pub struct Batch {
    keys: Vec<String>,
    field: &'static str,
    expected: String,
    args: Vec<Vec<u8>>,
    writes: usize,
}

impl Batch {
    /// A batch fenced by the string `fence` having the value `expected`, or (with `field` not
    /// empty) by that field of the hash `fence`.
    pub fn new(fence: String, field: &'static str, expected: String) -> Self {
        Batch { keys: vec![fence], field, expected, args: Vec::new(), writes: 0 }
    }

    /// Adds a write: `command key args...`.
    pub fn write(&mut self, command: &'static str, key: &str, args: impl IntoIterator<Item = Vec<u8>>) {
        let index = match self.keys.iter().position(|k| k == key) {
            Some(i) => i + 1,
            None => {
                self.keys.push(key.to_owned());
                self.keys.len()
            }
        };
        let args: Vec<Vec<u8>> = args.into_iter().collect();
        self.args.push(command.as_bytes().to_vec());
        self.args.push(index.to_string().into_bytes());
        self.args.push(args.len().to_string().into_bytes());
        self.args.extend(args);
        self.writes += 1;
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.writes == 0
    }

    /// Runs the batch.
    ///
    /// # Errors
    /// [`BatchError::Fenced`] when the fence moved on; [`BatchError::Redis`] otherwise.
    pub async fn run<C: ConnectionLike + Send>(self, conn: &mut C) -> Result<(), BatchError> {
        let mut invocation = FENCED_BATCH.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        invocation.arg(self.field).arg(&self.expected);
        for arg in &self.args {
            invocation.arg(arg.as_slice());
        }
        match invocation.invoke_async::<()>(conn).await {
            Ok(()) => Ok(()),
            Err(err) if err.code() == Some("FENCED") => Err(BatchError::Fenced),
            Err(err) => Err(BatchError::Redis(err)),
        }
    }
}
