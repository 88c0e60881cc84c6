//! Why the rules close a socket themselves, during a drain.

use serde::{Deserialize, Serialize};

/// How a socket is closed when its instance drains (shuts down on purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Closing {
    /// Close code 1012: the instance is restarting; the client reconnects (to another
    /// instance) and resumes, keeping its place. For a client that is not in a chat.
    Restart,
    /// Close code 1001: going away. For a chatting client that left its chat during the drain.
    GoingAway,
}
