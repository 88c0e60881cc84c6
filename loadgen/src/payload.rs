//! Signals of realistic sizes whose content says who sent them and in which round, so that the
//! receiver can tell an intact, in-order message from a lost, altered or reordered one.
//!
//! Round `r` of a pair carries an SDP-sized `offer`/`answer` once every [`Shape::sdp_one_in`]
//! rounds and an ICE-sized `ice` otherwise; the initiator speaks first and the responder answers
//! with the same kind. `{"type":"ice","candidate":null}` (end of candidates) ends a stream.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::ClientError;
use crate::wire::Incoming;

/// Default SDP text size: a typical audio+video offer is about 2 KB.
pub const DEFAULT_SDP_BYTES: usize = 2_000;
/// Default ICE frame size: a host/srflx candidate with its JSON wrapper is about 200 B.
pub const DEFAULT_ICE_BYTES: usize = 200;
/// Default mix: one description per four signals, about what a call sends (2 SDP, ~8 candidates).
pub const DEFAULT_SDP_ONE_IN: u64 = 4;
/// Largest SDP the filler can make (the services accept 64 KiB frames by default).
pub const MAX_SDP_BYTES: usize = 60_000;
/// End of a stream: the end-of-candidates signal.
pub const END: &str = r#"{"type":"ice","candidate":null}"#;

/// Padding that makes descriptions their size; computed once.
static FILLER: LazyLock<String> = LazyLock::new(|| {
    let line = "a=x-loadgen-filler:0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    line.repeat(MAX_SDP_BYTES / line.len() + 1)
});

/// Sizes and mix of the signals.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Length of an SDP text.
    pub sdp_bytes: usize,
    /// Length of an ICE frame.
    pub ice_bytes: usize,
    /// One description every this many rounds (1: descriptions only).
    pub sdp_one_in: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape { sdp_bytes: DEFAULT_SDP_BYTES, ice_bytes: DEFAULT_ICE_BYTES, sdp_one_in: DEFAULT_SDP_ONE_IN }
    }
}

/// Who sends a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Speaks first (`offer`).
    Initiator,
    /// Answers (`answer`).
    Responder,
}

impl Side {
    fn tag(self) -> &'static str {
        match self {
            Side::Initiator => "i",
            Side::Responder => "r",
        }
    }
}

impl Shape {
    fn is_sdp(&self, round: u64) -> bool {
        round.is_multiple_of(self.sdp_one_in.max(1))
    }

    fn kind(&self, round: u64, side: Side) -> &'static str {
        match (self.is_sdp(round), side) {
            (true, Side::Initiator) => "offer",
            (true, Side::Responder) => "answer",
            (false, _) => "ice",
        }
    }

    fn sdp(&self, pair: &str, round: u64, side: Side) -> String {
        let head = format!("v=0\r\no=- {round} 2 IN IP4 127.0.0.1\r\ns={pair}/{}\r\nt=0 0\r\n", side.tag());
        let pad = self.sdp_bytes.min(MAX_SDP_BYTES).saturating_sub(head.len());
        head + &FILLER[..pad]
    }

    fn candidate(&self, pair: &str, round: u64, side: Side) -> String {
        let text = format!("candidate:{round} 1 udp 2122260223 127.0.0.1 50000 typ host generation 0 ufrag {pair}");
        let wrap = |text: &str| {
            format!(r#"{{"candidate":"{text}","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"{}"}}"#, side.tag())
        };
        // The frame is `{"type":"ice","candidate":` + object + `}`.
        let frame_len = 26 + wrap(&text).len() + 1;
        let pad = self.ice_bytes.saturating_sub(frame_len);
        wrap(&format!("{text}{}", " ".repeat(pad)))
    }

    /// The frame `side` sends in `round` of the pair named `pair` (the initiator's id).
    pub fn frame(&self, pair: &str, round: u64, side: Side) -> String {
        let kind = self.kind(round, side);
        if self.is_sdp(round) {
            let sdp = serde_json::Value::String(self.sdp(pair, round, side));
            format!(r#"{{"type":"{kind}","sdp":{sdp}}}"#)
        } else {
            format!(r#"{{"type":"ice","candidate":{}}}"#, self.candidate(pair, round, side))
        }
    }

    /// Checks that `signal` is exactly what `side` sends in `round`, from `partner` when the
    /// target says who sent it.
    ///
    /// # Errors
    /// [`ClientError::Integrity`] saying whether the message was out of order, altered or
    /// attributed to the wrong sender.
    pub fn check(
        &self,
        signal: &Signal<'_>,
        pair: &str,
        round: u64,
        side: Side,
        partner: Option<&str>,
    ) -> Result<(), ClientError> {
        let kind = self.kind(round, side);
        let intact = signal.kind == kind
            && if self.is_sdp(round) {
                signal.sdp.as_deref() == Some(self.sdp(pair, round, side).as_str())
            } else {
                signal.candidate.map(RawValue::get) == Some(self.candidate(pair, round, side).as_str())
            };
        if !intact {
            return Err(ClientError::Integrity(match signal.round() {
                Some(got) if got != round => format!("expected round {round}, got round {got}: out of order or lost"),
                _ => format!("round {round} ({kind}) arrived altered"),
            }));
        }
        if let Some(partner) = partner {
            if signal.from.as_deref() != Some(partner) {
                return Err(ClientError::Integrity(format!(
                    "round {round}: `from` is {:?}, expected the partner {partner}",
                    signal.from
                )));
            }
        }
        Ok(())
    }
}

/// A relayed signal, borrowed from its frame.
#[derive(Debug, Deserialize)]
pub struct Signal<'a> {
    /// `offer`, `answer` or `ice`.
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    /// The description.
    #[serde(default, borrow)]
    pub sdp: Option<Cow<'a, str>>,
    /// The candidate object as sent (`None` for `null`: end of candidates).
    #[serde(default, borrow)]
    pub candidate: Option<&'a RawValue>,
    /// Who sent it, as the signaler says.
    #[serde(default, borrow)]
    pub from: Option<Cow<'a, str>>,
}

impl Signal<'_> {
    /// The round a signal claims to belong to, read back from its content.
    fn round(&self) -> Option<u64> {
        if let Some(sdp) = &self.sdp {
            return sdp.strip_prefix("v=0\r\no=- ")?.split(' ').next()?.parse().ok();
        }
        let text = self.candidate?.get();
        text.split("candidate:").nth(1)?.split(' ').next()?.parse().ok()
    }
}

/// What a frame on a signaling channel is.
#[derive(Debug)]
pub enum Received<'a> {
    /// A signal carrying content.
    Signal(Signal<'a>),
    /// The end-of-candidates signal that ends a stream.
    End,
    /// Anything else the server says (`peer-joined`, `error`, ...).
    Control(Incoming),
}

/// Reads a frame from a signaling channel.
///
/// # Errors
/// [`ClientError::Malformed`] for a frame that is neither a signal nor a known message.
pub fn read(text: &str) -> Result<Received<'_>, ClientError> {
    let malformed = |err: serde_json::Error| ClientError::Malformed { expected: "a signal", detail: err.to_string() };
    let signal: Signal<'_> = serde_json::from_str(text).map_err(malformed)?;
    match signal.kind.as_ref() {
        "offer" | "answer" => Ok(Received::Signal(signal)),
        "ice" if signal.candidate.is_some() => Ok(Received::Signal(signal)),
        "ice" => Ok(Received::End),
        _ => Incoming::parse(text, "a signal").map(Received::Control),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relayed(frame: &str, from: &str) -> String {
        // What the signaler does: the same object, values copied as written, with `from` added.
        frame.replacen('{', &format!(r#"{{"from":"{from}","#), 1)
    }

    #[test]
    fn frames_have_the_requested_sizes() {
        let shape = Shape::default();
        let sdp = shape.frame("pair", 0, Side::Initiator);
        let ice = shape.frame("pair", 1, Side::Initiator);
        assert!((2_000..2_200).contains(&sdp.len()), "{}", sdp.len());
        assert_eq!(ice.len(), DEFAULT_ICE_BYTES);
        assert!(sdp.contains(r#""type":"offer""#));
        assert!(shape.frame("pair", 0, Side::Responder).contains(r#""type":"answer""#));
    }

    #[test]
    fn an_intact_relayed_signal_passes() {
        let shape = Shape::default();
        for round in 0..8 {
            let text = relayed(&shape.frame("p", round, Side::Responder), "partner");
            let Received::Signal(signal) = read(&text).unwrap() else { panic!("not a signal") };
            shape.check(&signal, "p", round, Side::Responder, Some("partner")).unwrap();
        }
    }

    #[test]
    fn reordered_altered_and_misattributed_signals_fail() {
        let shape = Shape::default();
        let text = shape.frame("p", 2, Side::Initiator);
        let Received::Signal(signal) = read(&text).unwrap() else { panic!() };
        let err = shape.check(&signal, "p", 1, Side::Initiator, None).unwrap_err();
        assert!(err.to_string().contains("out of order"), "{err}");

        let altered = text.replace("ufrag p", "ufrag q");
        let Received::Signal(signal) = read(&altered).unwrap() else { panic!() };
        assert!(shape.check(&signal, "p", 2, Side::Initiator, None).unwrap_err().to_string().contains("altered"));

        let spoofed = relayed(&text, "someone");
        let Received::Signal(signal) = read(&spoofed).unwrap() else { panic!() };
        assert!(shape.check(&signal, "p", 2, Side::Initiator, Some("partner")).is_err());
    }

    #[test]
    fn end_and_control_messages_are_told_apart() {
        assert!(matches!(read(END).unwrap(), Received::End));
        assert!(matches!(read(r#"{"type":"peer-joined","peerId":"x"}"#).unwrap(), Received::Control(_)));
        assert!(read("[1]").is_err());
    }
}
