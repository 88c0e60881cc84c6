//! The baseline every figure is compared with: a bare tokio-tungstenite relay. It pairs sockets
//! in arrival order, tells each side `{"type":"matched","clientId":..,"partnerId":..,"initiator":..}`
//! and then forwards frames between them without looking inside. No rooms, tickets, queue
//! commands or metrics: the practical limit of any relay on the machine.
//!
//! Its sockets read into a 4 KiB buffer and do not buffer writes. The services read into 2 KiB
//! (less memory per idle socket, one more read for a large SDP), so the baseline is the
//! stricter one for speed and the looser one for memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Read buffer per socket.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Largest frame accepted: the services' default `MAX_MESSAGE_BYTES`.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Pause after a failed accept (out of descriptors, typically) instead of spinning.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

type Socket = WebSocketStream<TcpStream>;

/// The socket waiting for a partner, with its id.
#[derive(Default)]
struct Lobby {
    waiting: Mutex<Option<(u64, Socket)>>,
    next_id: AtomicU64,
}

/// Serves until the listener fails for good; each pair lives in its own task.
pub async fn serve(listener: TcpListener) {
    let lobby = Arc::new(Lobby::default());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(arrive(stream, lobby.clone()));
            }
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// Upgrades a connection and either parks it in the lobby or pairs it with the one parked there.
/// A parked socket is not read, so one that leaves while waiting is noticed only once paired
/// (its partner then sees the close): acceptable for a baseline.
async fn arrive(stream: TcpStream, lobby: Arc<Lobby>) {
    let _ = stream.set_nodelay(true);
    let Ok(socket) = tokio_tungstenite::accept_async_with_config(stream, Some(config())).await else { return };
    let id = lobby.next_id.fetch_add(1, Ordering::Relaxed);
    let partner = {
        let Ok(mut waiting) = lobby.waiting.lock() else { return };
        match waiting.take() {
            Some(first) => first,
            None => {
                *waiting = Some((id, socket));
                return;
            }
        }
    };
    // The one that waited longer speaks first, as with the matchmaker.
    relay(partner, (id, socket)).await;
}

fn matched(me: u64, partner: u64, initiator: bool) -> Message {
    Message::text(format!(
        r#"{{"type":"matched","clientId":"b{me}","partnerId":"b{partner}","initiator":{initiator}}}"#
    ))
}

/// Tells both sides, then forwards frames both ways until either side ends; dropping the pair
/// then closes the other side too.
async fn relay((first_id, first): (u64, Socket), (second_id, second): (u64, Socket)) {
    let (mut first_tx, first_rx) = first.split();
    let (mut second_tx, second_rx) = second.split();
    if first_tx.send(matched(first_id, second_id, true)).await.is_err()
        || second_tx.send(matched(second_id, first_id, false)).await.is_err()
    {
        return;
    }
    tokio::select! {
        _ = first_rx.forward(second_tx) => {}
        _ = second_rx.forward(first_tx) => {}
    }
}
