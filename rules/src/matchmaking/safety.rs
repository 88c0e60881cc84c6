//! Keeping strangers safe: blocks between users, reports, and the bans that enough reports
//! bring. Everything here is bounded (caps and expiry), and every change is recorded for a
//! shell that keeps these records outside the process (Redis), so that they survive a restart
//! and a new owner of the queue starts from them.
//!
//! The rules:
//! - A block between two authenticated users holds for `block_ttl`. (A block between two
//!   clients, authenticated or not, is kept on the clients themselves, see [`super::Client`].)
//! - Each report is kept for operators, newest first, up to [`MAX_REPORTS`].
//! - Reports against one subject (an address, or a user id) count once per reporter (the
//!   reporter's address when known); when `report_threshold` different reporters reported it
//!   within `report_window`, the subject is banned for `ban`.
//! - A ban refuses matching until it ends; an operator may add or lift bans.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{Ids, RoomId};
use crate::time::Millis;

/// Reports kept for operators, at most (the oldest go first).
pub const MAX_REPORTS: usize = 10_000;
/// Bans in force, at most (beyond it, the one that ends soonest goes first).
pub const MAX_BANS: usize = 100_000;
/// Blocks between users kept, at most (beyond it, the one that ends soonest goes first).
pub const MAX_USER_BLOCKS: usize = 100_000;
/// Subjects whose recent reports are counted, at most (beyond it, the least recently reported
/// is forgotten).
pub const MAX_REPORTED: usize = 100_000;

/// How the safety rules are tuned: the operator's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafetySettings {
    /// `BLOCK_TTL_SECS` in ms: how long a block between two users holds.
    pub block_ttl: Millis,
    /// `REPORT_THRESHOLD`: different reporters that bring a ban.
    pub report_threshold: usize,
    /// `REPORT_WINDOW_SECS` in ms: within how long they must have reported.
    pub report_window: Millis,
    /// `BAN_SECS` in ms: how long a ban by reports lasts.
    pub ban: Millis,
}

impl Default for SafetySettings {
    fn default() -> Self {
        SafetySettings { block_ttl: 7 * 24 * 3_600_000, report_threshold: 3, report_window: 3_600_000, ban: 3_600_000 }
    }
}

/// Who a report or a ban is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Subject {
    /// A client address (an IPv6 address by its /64), as text.
    Address(String),
    /// An authenticated user id.
    UserId(String),
}

/// Who a client is, as far as reports and bans go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Its address key, when the shell knows it (not behind a trusted proxy that named nobody).
    pub address: Option<String>,
    /// Its user id, once authenticated.
    pub user: Option<String>,
}

impl Identity {
    /// What a ban could be about: its address and its user id.
    pub fn subjects(&self) -> impl Iterator<Item = Subject> + '_ {
        let address = self.address.iter().map(|a| Subject::Address(a.clone()));
        address.chain(self.user.iter().map(|u| Subject::UserId(u.clone())))
    }
}

/// Why a client reported its partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// Advertising, bots.
    Spam,
    /// Insults, threats.
    Harassment,
    /// Unwanted nudity.
    Nudity,
    /// Someone who seems under age.
    Underage,
    /// Anything else (the note says).
    Other,
}

impl Reason {
    /// Every reason, for metrics labels.
    pub const ALL: [Reason; 5] = [Reason::Spam, Reason::Harassment, Reason::Nudity, Reason::Underage, Reason::Other];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Spam => "spam",
            Reason::Harassment => "harassment",
            Reason::Nudity => "nudity",
            Reason::Underage => "underage",
            Reason::Other => "other",
        }
    }
}

/// A report, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Its id.
    pub id: Uuid,
    /// When it was made.
    pub at: Millis,
    /// Why.
    pub reason: Reason,
    /// What the reporter wrote, if anything.
    pub note: Option<String>,
    /// The room of the match it is about.
    pub room: RoomId,
    /// Who reported.
    pub reporter: Identity,
    /// Who was reported.
    pub reported: Identity,
}

/// Who banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BanSource {
    /// Reports from enough different reporters.
    Reports,
    /// An operator.
    Operator,
}

/// A ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ban {
    /// Its id.
    pub id: Uuid,
    /// Who is banned.
    pub subject: Subject,
    /// Since when.
    pub since: Millis,
    /// Until when.
    pub until: Millis,
    /// Why (a report reason, or the operator's words).
    pub reason: String,
    /// Who banned.
    pub source: BanSource,
}

/// A change to the records, for a shell that keeps them elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// A report was made.
    Reported(Report),
    /// The oldest report kept was forgotten.
    ReportDropped(Uuid),
    /// A ban was added.
    Banned(Ban),
    /// A ban ended or was lifted.
    Unbanned(Uuid),
    /// The reports counted against a subject now (empty: none).
    Strikes(Subject, Vec<Strike>),
    /// Two users block each other until the time given (`None`: no longer).
    UserBlock(UserPair, Option<Millis>),
}

/// A report counted against a subject: by whom (the reporter's key) and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strike {
    /// The reporter: its address, else its user id, else its client id.
    pub by: String,
    /// When.
    pub at: Millis,
}

/// Two user ids, in order, so that a block is the same whichever side made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserPair(pub String, pub String);

impl UserPair {
    /// The pair of `a` and `b`, whichever order.
    pub fn new(a: &str, b: &str) -> Self {
        if a <= b {
            UserPair(a.to_owned(), b.to_owned())
        } else {
            UserPair(b.to_owned(), a.to_owned())
        }
    }
}

/// The records kept, as a shell gives them back to [`Safety::restore`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// Reports, oldest first.
    pub reports: Vec<Report>,
    /// Bans.
    pub bans: Vec<Ban>,
    /// Reports counted against each subject.
    pub strikes: Vec<(Subject, Vec<Strike>)>,
    /// Blocks between users, with when they end.
    pub user_blocks: Vec<(UserPair, Millis)>,
}

/// Blocks between users, reports, strikes and bans.
#[derive(Debug, Default)]
pub struct Safety {
    settings: SafetySettings,
    reports: VecDeque<Report>,
    bans: HashMap<Uuid, Ban>,
    banned: HashMap<Subject, Uuid>,
    strikes: HashMap<Subject, Vec<Strike>>,
    user_blocks: HashMap<UserPair, Millis>,
    changes: Vec<Change>,
    track: bool,
}

impl Safety {
    /// Nothing recorded yet.
    pub fn new(settings: SafetySettings) -> Self {
        Safety { settings, ..Safety::default() }
    }

    /// From the records another owner kept.
    pub fn restore(settings: SafetySettings, records: Records) -> Self {
        let mut safety = Safety::new(settings);
        safety.reports = records.reports.into();
        for ban in records.bans {
            safety.banned.insert(ban.subject.clone(), ban.id);
            safety.bans.insert(ban.id, ban);
        }
        safety.strikes = records.strikes.into_iter().collect();
        safety.user_blocks = records.user_blocks.into_iter().collect();
        safety
    }

    /// Records changes for [`Safety::take_changes`].
    pub fn tracking(mut self) -> Self {
        self.track = true;
        self
    }

    /// The changes since the last call (empty unless tracked).
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    fn record(&mut self, change: Change) {
        if self.track {
            self.changes.push(change);
        }
    }

    // ---- blocks between users ---------------------------------------------------------------

    /// `a` and `b` block each other from `now` for the block time.
    pub fn block_users(&mut self, a: &str, b: &str, now: Millis) {
        if a == b {
            return;
        }
        let pair = UserPair::new(a, b);
        let until = now.saturating_add(self.settings.block_ttl);
        if !self.user_blocks.contains_key(&pair) && self.user_blocks.len() >= MAX_USER_BLOCKS {
            if let Some(first) = soonest(&self.user_blocks, |until| *until) {
                self.user_blocks.remove(&first);
                self.record(Change::UserBlock(first, None));
            }
        }
        self.user_blocks.insert(pair.clone(), until);
        self.record(Change::UserBlock(pair, Some(until)));
    }

    /// Forgets the block between a pair if it is over by `now`; whether it did.
    pub fn end_user_block(&mut self, pair: &UserPair, now: Millis) -> bool {
        let over = self.user_blocks.get(pair).is_some_and(|until| *until <= now);
        if over {
            self.user_blocks.remove(pair);
            self.record(Change::UserBlock(pair.clone(), None));
        }
        over
    }

    /// When the block between a pair ends.
    pub fn user_block_end(&self, pair: &UserPair) -> Option<Millis> {
        self.user_blocks.get(pair).copied()
    }

    /// Every block between users, with when it ends.
    pub fn user_blocks(&self) -> impl Iterator<Item = (&UserPair, Millis)> {
        self.user_blocks.iter().map(|(pair, until)| (pair, *until))
    }

    /// Whether users `a` and `b` block each other at `now`.
    pub fn users_blocked(&self, a: &str, b: &str, now: Millis) -> bool {
        !self.user_blocks.is_empty() && self.user_blocks.get(&UserPair::new(a, b)).is_some_and(|until| *until > now)
    }

    // ---- reports -------------------------------------------------------------------------------

    /// Keeps a report and counts it against the reported; returns the bans it brings.
    pub fn report(&mut self, report: Report, reporter_key: String, now: Millis, ids: &mut Ids) -> Vec<Ban> {
        let subjects: Vec<Subject> = report.reported.subjects().collect();
        let reason = report.reason;
        if self.reports.len() >= MAX_REPORTS {
            if let Some(old) = self.reports.pop_front() {
                self.record(Change::ReportDropped(old.id));
            }
        }
        self.reports.push_back(report.clone());
        self.record(Change::Reported(report));
        let mut bans = Vec::new();
        for subject in subjects {
            let since = now.saturating_sub(self.settings.report_window);
            if !self.strikes.contains_key(&subject) && self.strikes.len() >= MAX_REPORTED {
                let stale = soonest(&self.strikes, |s| s.last().map_or(0, |x| x.at));
                if let Some(stale) = stale {
                    self.strikes.remove(&stale);
                    self.record(Change::Strikes(stale, Vec::new()));
                }
            }
            let strikes = self.strikes.entry(subject.clone()).or_default();
            strikes.retain(|s| s.at > since && s.by != reporter_key);
            strikes.push(Strike { by: reporter_key.clone(), at: now });
            let reached = strikes.len() >= self.settings.report_threshold.max(1);
            let kept = if reached { Vec::new() } else { strikes.clone() };
            if reached {
                self.strikes.remove(&subject);
            }
            self.record(Change::Strikes(subject.clone(), kept));
            if reached && self.ban_of(&subject, now).is_none() {
                let until = now.saturating_add(self.settings.ban);
                let ban = Ban {
                    id: ids.uuid(),
                    subject,
                    since: now,
                    until,
                    reason: reason.as_str().to_owned(),
                    source: BanSource::Reports,
                };
                self.add_ban(ban.clone());
                bans.push(ban);
            }
        }
        bans
    }

    /// Reports, newest first: `limit` of them after skipping `offset`; and how many there are.
    pub fn reports(&self, offset: usize, limit: usize) -> (Vec<Report>, usize) {
        (self.reports.iter().rev().skip(offset).take(limit).cloned().collect(), self.reports.len())
    }

    // ---- bans ----------------------------------------------------------------------------------

    /// Adds a ban (replacing one on the same subject).
    pub fn add_ban(&mut self, ban: Ban) {
        if let Some(old) = self.banned.get(&ban.subject).copied() {
            self.lift(old);
        }
        if self.bans.len() >= MAX_BANS {
            if let Some(first) = soonest(&self.bans, |b| b.until) {
                self.lift(first);
            }
        }
        self.banned.insert(ban.subject.clone(), ban.id);
        self.bans.insert(ban.id, ban.clone());
        self.record(Change::Banned(ban));
    }

    /// Lifts a ban; whether there was one.
    pub fn lift(&mut self, id: Uuid) -> bool {
        let Some(ban) = self.bans.remove(&id) else { return false };
        if self.banned.get(&ban.subject) == Some(&id) {
            self.banned.remove(&ban.subject);
        }
        self.record(Change::Unbanned(id));
        true
    }

    /// Lifts the bans that are over by `now`.
    pub fn expire(&mut self, now: Millis) {
        let over: Vec<Uuid> = self.bans.values().filter(|b| b.until <= now).map(|b| b.id).collect();
        for id in over {
            self.lift(id);
        }
    }

    /// The ban in force on `subject` at `now`, if any.
    pub fn ban_of(&self, subject: &Subject, now: Millis) -> Option<&Ban> {
        let id = self.banned.get(subject)?;
        self.bans.get(id).filter(|b| b.until > now)
    }

    /// Until when `who` is banned at `now` (the latest of its bans), if it is.
    pub fn banned_until(&self, who: &Identity, now: Millis) -> Option<Millis> {
        if self.banned.is_empty() {
            return None;
        }
        who.subjects().filter_map(|s| self.ban_of(&s, now).map(|b| b.until)).max()
    }

    /// The bans in force at `now`, the newest first.
    pub fn bans(&self, now: Millis) -> Vec<Ban> {
        in_force(self.bans.values().cloned(), now)
    }

    /// When the next ban ends, for a timer.
    pub fn next_ban_end(&self) -> Option<Millis> {
        self.bans.values().map(|b| b.until).min()
    }
}

/// Of `bans`, those in force at `now`, the newest first (as operators list them).
pub fn in_force(bans: impl IntoIterator<Item = Ban>, now: Millis) -> Vec<Ban> {
    let mut bans: Vec<Ban> = bans.into_iter().filter(|b| b.until > now).collect();
    bans.sort_by(|a, b| b.since.cmp(&a.since).then(a.id.cmp(&b.id)));
    bans
}

/// The key whose value is least (by `by`), for eviction.
fn soonest<K: Clone + Ord, V>(map: &HashMap<K, V>, by: impl Fn(&V) -> Millis) -> Option<K> {
    map.iter().min_by(|a, b| by(a.1).cmp(&by(b.1)).then_with(|| a.0.cmp(b.0))).map(|(k, _)| k.clone())
}
