//! `job_requests` on SQLite, as on PostgreSQL (`crate::store::requests` holds what they share).

use super::*;
use crate::store::requests;
use shared::ports::{Request, RequestOutcome, RequestRecord, RequestStart, RequestState};

const COLUMNS: &str = "id, kind, user_id, state, attempts, result, reason, retry_at, held_until, created_at, \
                       updated_at, finished_at";

fn record(row: &sqlx::sqlite::SqliteRow) -> std::result::Result<RequestRecord, sqlx::Error> {
    let state: String = row.try_get("state")?;
    let stamp_of = |column: &str| -> std::result::Result<Option<DateTime<Utc>>, sqlx::Error> {
        row.try_get::<Option<String>, _>(column)?.as_deref().map(parse_stamp).transpose()
    };
    let result: Option<String> = row.try_get("result")?;
    Ok(RequestRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        user_id: row.try_get("user_id")?,
        state: RequestState::parse(&state).ok_or_else(|| sqlx::Error::Decode(format!("state {state:?}").into()))?,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        result: result
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        reason: row.try_get("reason")?,
        retry_at: stamp_of("retry_at")?,
        held_until: stamp_of("held_until")?,
        created_at: parse_stamp(row.try_get("created_at")?)?,
        updated_at: parse_stamp(row.try_get("updated_at")?)?,
        finished_at: stamp_of("finished_at")?,
    })
}

pub(super) async fn start(
    db: &Db,
    kind: &str,
    request: &Request,
    now: DateTime<Utc>,
    hold: Duration,
) -> Result<RequestStart> {
    for _ in 0..2 {
        let started: Option<i64> = sqlx::query_scalar(
            "INSERT INTO job_requests (id, kind, user_id, state, attempts, held_until, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'running', 1, ?5, ?4, ?4)
             ON CONFLICT (id) DO UPDATE SET state = 'running', attempts = job_requests.attempts + 1,
                 held_until = excluded.held_until, retry_at = NULL, redrivable = 0, finished_at = NULL,
                 updated_at = excluded.updated_at
             WHERE job_requests.kind = excluded.kind AND job_requests.user_id = excluded.user_id
               AND (job_requests.state = 'queued' OR (job_requests.state = 'failed' AND job_requests.redrivable)
                    OR (job_requests.state = 'running' AND job_requests.held_until <= excluded.updated_at))
             RETURNING attempts",
        )
        .bind(&request.id)
        .bind(kind)
        .bind(request.user_id)
        .bind(stamp(now))
        .bind(later(now, hold))
        .fetch_optional(db)
        .await
        .map_err(job)?;
        if let Some(attempt) = started {
            return Ok(RequestStart::Started(attempt as u32));
        }
        let Some(found) = find(db, &request.id).await? else { continue };
        if let Some(start) = requests::not_started(kind, request, found)? {
            return Ok(start);
        }
    }
    Err(shared::Error::retryable(format!("request {} changed while it was being started", request.id)))
}

pub(super) async fn finish(
    db: &Db,
    id: &str,
    attempt: u32,
    outcome: &RequestOutcome,
    now: DateTime<Utc>,
) -> Result<bool> {
    let row = requests::Row::of(outcome, now);
    let updated = sqlx::query(
        "UPDATE job_requests SET state = ?3, result = ?4, reason = ?5, redrivable = ?6, retry_at = ?7,
             held_until = NULL, updated_at = ?8, finished_at = ?9
         WHERE id = ?1 AND attempts = ?2 AND state = 'running'",
    )
    .bind(id)
    .bind(i64::from(attempt))
    .bind(row.state.as_str())
    .bind(row.result.map(|r| r.to_string()))
    .bind(row.reason)
    .bind(row.redrivable)
    .bind(row.retry_at.map(stamp))
    .bind(stamp(now))
    .bind(row.finished_at.map(stamp))
    .execute(db)
    .await
    .map_err(job)?;
    Ok(updated.rows_affected() == 1)
}

pub(super) async fn find(db: &Db, id: &str) -> Result<Option<RequestRecord>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM job_requests WHERE id = ?1"))
        .bind(id)
        .fetch_optional(db)
        .await
        .map_err(job)?;
    row.as_ref().map(record).transpose().map_err(job)
}

pub(super) async fn of_user(db: &Db, user_id: i64, limit: u32) -> Result<Vec<RequestRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM job_requests WHERE user_id = ?1 ORDER BY created_at DESC, id LIMIT ?2"
    ))
    .bind(user_id)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
    .map_err(job)?;
    rows.iter().map(record).collect::<std::result::Result<_, _>>().map_err(job)
}
