//! The state between requests: one JSON file in the directory the host maps (`--dir .::/`),
//! read and written whole by each request while it holds a lock file, so that concurrent
//! requests (each in an instance of its own) take turns. A lock left behind by a request that
//! died is taken over once it is [`STALE_LOCK`] old.

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rules::matchbox::PolledRooms;

/// The state file's name in the mapped directory.
pub const STATE_FILE: &str = "signaler-wasi-state.json";
/// The lock file's name.
pub const LOCK_FILE: &str = "signaler-wasi-state.lock";
/// A lock this old belongs to a request that died.
pub const STALE_LOCK: Duration = Duration::from_secs(2);
/// How long a request waits for the lock before it gives up (503).
pub const LOCK_PATIENCE: Duration = Duration::from_secs(5);
/// How often a waiting request tries the lock again.
const LOCK_RETRY: Duration = Duration::from_millis(2);

/// The state file and its lock, in one directory.
#[derive(Debug, Clone)]
pub struct Store {
    state: PathBuf,
    lock: PathBuf,
}

/// The lock could not be had within [`LOCK_PATIENCE`], or the file could not be written.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl Store {
    /// The store in `dir`.
    pub fn new(dir: &Path) -> Self {
        Store { state: dir.join(STATE_FILE), lock: dir.join(LOCK_FILE) }
    }

    /// Runs `f` on the state, under the lock, and writes back what it left.
    ///
    /// # Errors
    /// [`Unavailable`] when the lock stays taken or the directory cannot be written.
    pub fn with<R>(&self, f: impl FnOnce(&mut PolledRooms) -> R) -> Result<R, Unavailable> {
        self.lock()?;
        let result = self.locked(f);
        let _ = fs::remove_file(&self.lock);
        result
    }

    fn locked<R>(&self, f: impl FnOnce(&mut PolledRooms) -> R) -> Result<R, Unavailable> {
        // A missing file is a fresh start; so is one that does not read (it was not ours).
        let mut rooms = fs::read(&self.state)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<PolledRooms>(&bytes).ok())
            .unwrap_or_default();
        let result = f(&mut rooms);
        let text = serde_json::to_vec(&rooms).map_err(|err| Unavailable(err.to_string()))?;
        let partial = self.state.with_extension("json.partial");
        fs::write(&partial, text).map_err(|err| Unavailable(format!("cannot write the state: {err}")))?;
        fs::rename(&partial, &self.state).map_err(|err| Unavailable(format!("cannot write the state: {err}")))?;
        Ok(result)
    }

    fn lock(&self) -> Result<(), Unavailable> {
        let started = Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&self.lock) {
                Ok(_) => return Ok(()),
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    let age = fs::metadata(&self.lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|at| SystemTime::now().duration_since(at).ok());
                    if age.is_some_and(|age| age >= STALE_LOCK) {
                        let _ = fs::remove_file(&self.lock);
                        continue;
                    }
                }
                Err(err) => return Err(Unavailable(format!("cannot take the lock: {err}"))),
            }
            if started.elapsed() >= LOCK_PATIENCE {
                return Err(Unavailable("the state stayed locked".into()));
            }
            std::thread::sleep(LOCK_RETRY);
        }
    }
}
