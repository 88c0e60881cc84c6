//! Reports, bans, strikes and blocks between users in Redis: the owner of the queue writes
//! what changed with each commit (in its fenced batch), reads them all back when it takes over,
//! and any instance reads reports and bans for the operator's routes. So they survive a restart
//! of every instance.
//!
//! - `reports`: list, newest first, trimmed to [`MAX_REPORTS`];
//! - `bans`: hash, ban id -> ban;
//! - `strikes`: hash, subject -> the reports counted against it;
//! - `user-blocks`: hash, pair of users -> until when (ms).

use redis::AsyncCommands;
use rules::matchmaking::safety::{in_force, Ban, Change, Records, Report, Strike, Subject, UserPair, MAX_REPORTS};
use shared::redis::fenced::Batch;
use shared::redis::{wire, RedisConn, COMMAND_TIMEOUT};

use super::keys::Keys;
use crate::queue::{now_ms, AdminAnswer, AdminQuery};

/// What changed goes into the owner's batch.
pub fn write(batch: &mut Batch, keys: &Keys, changes: &[Change]) {
    let mut reported = false;
    for change in changes {
        match change {
            Change::Reported(report) => {
                batch.write("LPUSH", &keys.reports, [wire::encode(report)]);
                reported = true;
            }
            // The list is trimmed to the same bound below.
            Change::ReportDropped(_) => {}
            Change::Banned(ban) => {
                batch.write("HSET", &keys.bans, [ban.id.to_string().into_bytes(), wire::encode(ban)])
            }
            Change::Unbanned(id) => batch.write("HDEL", &keys.bans, [id.to_string().into_bytes()]),
            Change::Strikes(subject, strikes) if strikes.is_empty() => {
                batch.write("HDEL", &keys.strikes, [wire::encode(subject)]);
            }
            Change::Strikes(subject, strikes) => {
                batch.write("HSET", &keys.strikes, [wire::encode(subject), wire::encode(strikes)]);
            }
            Change::UserBlock(pair, Some(until)) => {
                batch.write("HSET", &keys.user_blocks, [wire::encode(pair), until.to_string().into_bytes()]);
            }
            Change::UserBlock(pair, None) => batch.write("HDEL", &keys.user_blocks, [wire::encode(pair)]),
        }
    }
    if reported {
        batch.write("LTRIM", &keys.reports, [b"0".to_vec(), (MAX_REPORTS - 1).to_string().into_bytes()]);
    }
}

/// Everything kept, for a new owner (malformed entries are counted and skipped).
pub async fn load(conn: &mut RedisConn, keys: &Keys) -> redis::RedisResult<Records> {
    let reports: Vec<Vec<u8>> = conn.lrange(&keys.reports, 0, -1).await?;
    let bans: Vec<Vec<u8>> = conn.hvals(&keys.bans).await?;
    let strikes: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&keys.strikes).await?;
    let blocks: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&keys.user_blocks).await?;
    let mut records = Records {
        reports: reports.iter().rev().filter_map(|r| wire::decode::<Report>(r, "report")).collect(),
        bans: bans.iter().filter_map(|b| wire::decode::<Ban>(b, "ban")).collect(),
        ..Records::default()
    };
    for (subject, list) in strikes {
        if let (Some(subject), Some(list)) =
            (wire::decode::<Subject>(&subject, "strike subject"), wire::decode::<Vec<Strike>>(&list, "strikes"))
        {
            records.strikes.push((subject, list));
        }
    }
    for (pair, until) in blocks {
        let until = std::str::from_utf8(&until).ok().and_then(|u| u.parse().ok());
        if let (Some(pair), Some(until)) = (wire::decode::<UserPair>(&pair, "user block"), until) {
            records.user_blocks.push((pair, until));
        }
    }
    Ok(records)
}

/// Answers an operator's read from what the owner committed (for an instance that does not own
/// the queue).
pub async fn answer(mut conn: RedisConn, keys: Keys, query: AdminQuery) -> AdminAnswer {
    let read = async {
        match query {
            AdminQuery::Reports { offset, limit } => {
                let start = isize::try_from(offset).unwrap_or(isize::MAX);
                let stop = start.saturating_add(isize::try_from(limit).unwrap_or(isize::MAX)).saturating_sub(1);
                let page: Vec<Vec<u8>> = conn.lrange(&keys.reports, start, stop).await?;
                let total: usize = conn.llen(&keys.reports).await?;
                let reports = page.iter().filter_map(|r| wire::decode::<Report>(r, "report")).collect();
                Ok::<_, redis::RedisError>(AdminAnswer::Reports(reports, total))
            }
            AdminQuery::Bans => {
                let bans: Vec<Vec<u8>> = conn.hvals(&keys.bans).await?;
                let bans = bans.iter().filter_map(|b| wire::decode::<Ban>(b, "ban"));
                Ok(AdminAnswer::Bans(in_force(bans, now_ms())))
            }
        }
    };
    match tokio::time::timeout(COMMAND_TIMEOUT, read).await {
        Ok(Ok(answer)) => answer,
        _ => AdminAnswer::Unavailable,
    }
}
