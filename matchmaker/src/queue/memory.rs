//! The in-memory queue: one task owns the rules for good, applies every socket's requests in
//! the order they arrive, and delivers what they decide.

use rules::matchmaking::Matchmaking;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Duration, Instant};

use super::shell::Shell;
use super::{now_ms, AdminAnswer, Command, MAX_BATCH};

/// Runs the queue until every handle is gone.
pub async fn run(mut shell: Shell, mut commands: mpsc::Receiver<Command>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let deadline = deadline_of(&shell.core);
        tokio::select! {
            received = commands.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    return;
                }
                let mut inputs = Vec::with_capacity(batch.len());
                for command in batch.drain(..) {
                    match command {
                        Command::Apply(input) => inputs.push(input),
                        Command::Stats(reply) => {
                            let _ = reply.send(shell.core.stats().into());
                        }
                        Command::Admin(query, reply) => {
                            let _ = reply.send(AdminAnswer::from_rules(&shell.core, query));
                        }
                    }
                }
                let outcome = shell.step(now_ms(), inputs);
                shell.count(&outcome.safety);
                shell.deliver(outcome.local);
            }
            () = sleep_until(deadline) => {
                let outcome = shell.tick(now_ms());
                shell.count(&outcome.safety);
                shell.deliver(outcome.local);
            }
        }
        shell.figures.show(shell.core.stats().into());
    }
}

/// When the rules next need the time, as a tokio instant (far away when they do not).
pub fn deadline_of(core: &Matchmaking) -> Instant {
    let far = Instant::now() + Duration::from_secs(3600);
    match core.next_deadline() {
        None => far,
        Some(at) => Instant::now() + Duration::from_millis(at.saturating_sub(now_ms())),
    }
}
