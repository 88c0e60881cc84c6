//! The operator's routes, under `/admin`, each behind `Authorization: Bearer <ADMIN_TOKEN>`:
//! - `GET /admin/reports?offset=&limit=`: reports, newest first, a page at a time;
//! - `GET /admin/bans`: the bans in force, newest first;
//! - `POST /admin/bans` with `{"address"|"userId", "secs", "reason"}`: a ban (201);
//! - `DELETE /admin/bans/{id}`: lifts it (204; 404 for none).
//!
//! Without `ADMIN_TOKEN` every one of them answers 404, as if it did not exist; with it, a
//! missing or wrong token gets 401. The token is compared in constant time.

use std::net::IpAddr;
use std::sync::Arc;

use rules::matchmaking::safety::{Ban, BanSource, Identity, Report, Subject};
use rules::matchmaking::Input;
use serde::{Deserialize, Serialize};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::{Filter, Reply};

use super::MAX_SAFETY_SECS;
use crate::queue::{now_ms, AdminQuery, QueueHandle};

/// Reports in one page unless `limit` says otherwise.
pub const DEFAULT_PAGE: usize = 50;
/// Most reports in one page.
pub const MAX_PAGE: usize = 500;
/// Longest `reason` of an operator's ban, in characters.
pub const MAX_BAN_REASON_CHARS: usize = 500;
/// Largest body `POST /admin/bans` reads.
const MAX_BODY_BYTES: u64 = 4 * 1024;

/// The `/admin` routes.
pub fn routes(token: Option<String>, queue: QueueHandle) -> BoxedFilter<(warp::reply::Response,)> {
    let Some(token) = token else {
        // Not there at all: every path under /admin, whatever the method, is 404.
        return warp::path("admin")
            .map(|| warp::reply::with_status("not found", StatusCode::NOT_FOUND).into_response())
            .boxed();
    };
    let token: Arc<str> = Arc::from(token);
    let guard = warp::path("admin")
        .and(warp::header::optional::<String>("authorization"))
        .map(move |authorization: Option<String>| authorized(&token, authorization.as_deref()));
    let queue = warp::any().map(move || queue.clone());
    let reports = warp::path!("reports")
        .and(warp::get())
        .and(warp::query::<Page>())
        .and(queue.clone())
        .then(|page: Page, queue: QueueHandle| async move { list_reports(page, &queue).await.into_response() });
    let bans = warp::path!("bans")
        .and(warp::get())
        .and(queue.clone())
        .then(|queue: QueueHandle| async move { list_bans(&queue).await.into_response() });
    let ban = warp::path!("bans")
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::bytes())
        .and(queue.clone())
        .then(|body: bytes::Bytes, queue: QueueHandle| async move { add_ban(&body, &queue).await.into_response() });
    let lift = warp::path!("bans" / String)
        .and(warp::delete())
        .and(queue)
        .then(|id: String, queue: QueueHandle| async move { lift_ban(&id, &queue).await.into_response() });
    guard
        .and(reports.or(bans).unify().or(ban).unify().or(lift).unify())
        .map(|allowed: bool, reply: warp::reply::Response| if allowed { reply } else { unauthorized() })
        .boxed()
}

/// Whether `authorization` is `Bearer <token>`, compared in constant time.
fn authorized(token: &str, authorization: Option<&str>) -> bool {
    let Some(given) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else { return false };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn unauthorized() -> warp::reply::Response {
    let reply =
        warp::reply::with_status(error_body("send Authorization: Bearer <ADMIN_TOKEN>"), StatusCode::UNAUTHORIZED);
    warp::reply::with_header(reply, "www-authenticate", "Bearer").into_response()
}

fn error_body(message: &str) -> warp::reply::Json {
    warp::reply::json(&serde_json::json!({ "error": message }))
}

fn bad_request(message: &str) -> warp::reply::Response {
    warp::reply::with_status(error_body(message), StatusCode::BAD_REQUEST).into_response()
}

#[derive(Debug, Deserialize)]
struct Page {
    offset: Option<usize>,
    limit: Option<usize>,
}

/// A report as operators read it: times in Unix seconds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportView {
    id: uuid::Uuid,
    at: u64,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    room_id: uuid::Uuid,
    reporter: Who,
    reported: Who,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Who {
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
}

impl From<Identity> for Who {
    fn from(identity: Identity) -> Self {
        Who { address: identity.address, user_id: identity.user }
    }
}

impl From<Report> for ReportView {
    fn from(r: Report) -> Self {
        ReportView {
            id: r.id,
            at: r.at / 1_000,
            reason: r.reason.as_str(),
            note: r.note,
            room_id: r.room,
            reporter: r.reporter.into(),
            reported: r.reported.into(),
        }
    }
}

/// A ban as operators read it: times in Unix seconds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BanView {
    id: uuid::Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    since: u64,
    until: u64,
    reason: String,
    source: &'static str,
}

impl From<Ban> for BanView {
    fn from(ban: Ban) -> Self {
        let (address, user_id) = match ban.subject {
            Subject::Address(a) => (Some(a), None),
            Subject::UserId(u) => (None, Some(u)),
        };
        let source = match ban.source {
            BanSource::Reports => "reports",
            BanSource::Operator => "operator",
        };
        BanView {
            id: ban.id,
            address,
            user_id,
            since: ban.since / 1_000,
            until: ban.until.div_ceil(1_000),
            reason: ban.reason,
            source,
        }
    }
}

async fn list_reports(page: Page, queue: &QueueHandle) -> warp::reply::Response {
    let offset = page.offset.unwrap_or(0);
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return bad_request(&format!("limit must be from 1 to {MAX_PAGE}"));
    }
    let Some((reports, total)) = queue.admin_reports(AdminQuery::Reports { offset, limit }).await else {
        return unavailable();
    };
    let next = (offset + reports.len() < total).then_some(offset + reports.len());
    let reports: Vec<ReportView> = reports.into_iter().map(ReportView::from).collect();
    warp::reply::json(&serde_json::json!({ "reports": reports, "total": total, "offset": offset, "next": next }))
        .into_response()
}

async fn list_bans(queue: &QueueHandle) -> warp::reply::Response {
    match queue.admin_bans().await {
        Some(bans) => {
            let bans: Vec<BanView> = bans.into_iter().map(BanView::from).collect();
            warp::reply::json(&serde_json::json!({ "bans": bans })).into_response()
        }
        None => unavailable(),
    }
}

fn unavailable() -> warp::reply::Response {
    warp::reply::with_status(
        error_body("the store of reports and bans did not answer"),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewBan {
    address: Option<String>,
    user_id: Option<String>,
    secs: u64,
    reason: Option<String>,
}

async fn add_ban(body: &[u8], queue: &QueueHandle) -> warp::reply::Response {
    let new: NewBan = match serde_json::from_slice(body) {
        Ok(new) => new,
        Err(err) => return bad_request(&format!("expected {{\"address\"|\"userId\", \"secs\", \"reason\"}}: {err}")),
    };
    let subject = match (new.address, new.user_id) {
        (Some(address), None) => match address.trim().parse::<IpAddr>() {
            Ok(ip) => Subject::Address(shared::limits::ip_key(ip).to_string()),
            Err(_) => return bad_request("address must be an IPv4 or IPv6 address"),
        },
        (None, Some(user)) if !user.is_empty() => Subject::UserId(user),
        _ => return bad_request("give exactly one of address and userId"),
    };
    if new.secs == 0 || new.secs > MAX_SAFETY_SECS {
        return bad_request(&format!("secs must be from 1 to {MAX_SAFETY_SECS}"));
    }
    let reason = new.reason.unwrap_or_else(|| "operator".to_owned());
    if reason.chars().count() > MAX_BAN_REASON_CHARS {
        return bad_request(&format!("reason must be at most {MAX_BAN_REASON_CHARS} characters"));
    }
    let now = now_ms();
    let ban = Ban {
        id: shared::random::uuid(),
        subject,
        since: now,
        until: now + new.secs * 1_000,
        reason,
        source: BanSource::Operator,
    };
    queue.apply(Input::Ban { ban: ban.clone() }).await;
    warp::reply::with_status(warp::reply::json(&BanView::from(ban)), StatusCode::CREATED).into_response()
}

async fn lift_ban(id: &str, queue: &QueueHandle) -> warp::reply::Response {
    let not_found = || warp::reply::with_status(error_body("no such ban"), StatusCode::NOT_FOUND).into_response();
    let Ok(id) = uuid::Uuid::parse_str(id) else { return not_found() };
    let Some(bans) = queue.admin_bans().await else { return unavailable() };
    if !bans.iter().any(|b| b.id == id) {
        return not_found();
    }
    queue.apply(Input::Unban { id }).await;
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_authorized() {
        assert!(authorized("s3cret-token", Some("Bearer s3cret-token")));
        assert!(!authorized("s3cret-token", Some("Bearer s3cret-tokem")));
        assert!(!authorized("s3cret-token", Some("Bearer s3cret")));
        assert!(!authorized("s3cret-token", Some("Basic s3cret-token")));
        assert!(!authorized("s3cret-token", None));
    }
}
