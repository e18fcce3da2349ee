//! `job_requests` on PostgreSQL: the on-demand requests' states, written by the runtime (`RunStore`).

use super::*;
use crate::store::requests;
use shared::ports::{Request, RequestOutcome, RequestRecord, RequestStart, RequestState};

const COLUMNS: &str = "id, kind, user_id, state, attempts, result, reason, retry_at, held_until, created_at, \
                       updated_at, finished_at";

fn record(row: &PgRow) -> std::result::Result<RequestRecord, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(RequestRecord {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        user_id: row.try_get("user_id")?,
        state: RequestState::parse(&state).ok_or_else(|| sqlx::Error::Decode(format!("state {state:?}").into()))?,
        attempts: row.try_get::<i32, _>("attempts")? as u32,
        result: row.try_get::<Option<Json<serde_json::Value>>, _>("result")?.map(|j| j.0),
        reason: row.try_get("reason")?,
        retry_at: row.try_get("retry_at")?,
        held_until: row.try_get("held_until")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

pub(super) async fn start(
    pool: &PgPool,
    kind: &str,
    request: &Request,
    now: DateTime<Utc>,
    hold: Duration,
) -> Result<RequestStart> {
    // One statement takes it (created, queued, redrivable, or its holder lost); otherwise the row says why not.
    // Between the two, another attempt may finish or fail: the second try reads its outcome.
    for _ in 0..2 {
        let started: Option<i32> = sqlx::query_scalar(
            "INSERT INTO job_requests (id, kind, user_id, state, attempts, held_until, created_at, updated_at)
             VALUES ($1, $2, $3, 'running', 1, $5, $4, $4)
             ON CONFLICT (id) DO UPDATE SET state = 'running', attempts = job_requests.attempts + 1,
                 held_until = excluded.held_until, retry_at = NULL, redrivable = FALSE, finished_at = NULL,
                 updated_at = excluded.updated_at
             WHERE job_requests.kind = excluded.kind AND job_requests.user_id = excluded.user_id
               AND (job_requests.state = 'queued' OR (job_requests.state = 'failed' AND job_requests.redrivable)
                    OR (job_requests.state = 'running' AND job_requests.held_until <= excluded.updated_at))
             RETURNING attempts",
        )
        .bind(&request.id)
        .bind(kind)
        .bind(request.user_id)
        .bind(now)
        .bind(later(now, hold))
        .fetch_optional(pool)
        .await
        .map_err(job)?;
        if let Some(attempt) = started {
            return Ok(RequestStart::Started(attempt as u32));
        }
        let Some(found) = find(pool, &request.id).await? else { continue };
        if let Some(start) = requests::not_started(kind, request, found)? {
            return Ok(start);
        }
    }
    Err(shared::Error::retryable(format!("request {} changed while it was being started", request.id)))
}

pub(super) async fn finish(
    pool: &PgPool,
    id: &str,
    attempt: u32,
    outcome: &RequestOutcome,
    now: DateTime<Utc>,
) -> Result<bool> {
    let row = requests::Row::of(outcome, now);
    let updated = sqlx::query(
        "UPDATE job_requests SET state = $3, result = $4, reason = $5, redrivable = $6, retry_at = $7,
             held_until = NULL, updated_at = $8, finished_at = $9
         WHERE id = $1 AND attempts = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(attempt as i32)
    .bind(row.state.as_str())
    .bind(row.result.map(Json))
    .bind(row.reason)
    .bind(row.redrivable)
    .bind(row.retry_at)
    .bind(now)
    .bind(row.finished_at)
    .execute(pool)
    .await
    .map_err(job)?;
    Ok(updated.rows_affected() == 1)
}

pub(super) async fn find(pool: &PgPool, id: &str) -> Result<Option<RequestRecord>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM job_requests WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(job)?;
    row.as_ref().map(record).transpose().map_err(job)
}

pub(super) async fn of_user(pool: &PgPool, user_id: i64, limit: u32) -> Result<Vec<RequestRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM job_requests WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2"
    ))
    .bind(user_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(job)?;
    rows.iter().map(record).collect::<std::result::Result<_, _>>().map_err(job)
}
