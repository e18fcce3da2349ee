//! What the PostgreSQL and SQLite stores share beyond their SQL: turning a claim's rows into per-key states,
//! rows of activity into `DayActivity`, `WeekActivity` and the other fitness tasks' types, the date bounds
//! their SQL is given, and a user's row with its devices and choices into a `Contact`. The SQL differs by
//! dialect; this does not. The cleanups' sweeps are the exception: their conditions read the same in both
//! dialects, so they are written once here (`sweeps`).

pub(crate) mod run_rows {
    use chrono::{DateTime, Utc};
    use shared::ports::{PlanHistory, RunRecord, RunStart, WorkTally};

    pub const COLUMNS: &str =
        "task, slot, status, planned, messages, messages_done, sent, skipped, failed, started_at, finished_at, errors";

    /// What `begin_run` found: this insert started the run, or the run already there was left mid-plan by a
    /// planner that died (resume it) or planned before.
    pub fn start(inserted: bool, existing: Option<RunRecord>) -> shared::Result<RunStart> {
        if inserted {
            return Ok(RunStart::Started);
        }
        let run = existing.ok_or_else(|| shared::Error::retryable("a run vanished"))?;
        Ok(if run.status == "planning" { RunStart::Resumed } else { RunStart::AlreadyPlanned(run) })
    }

    /// `plan_history` from rows of (slot, still planning): the unfinished runs in any order, and the newest
    /// finished one if there is any.
    pub fn plan_history(
        rows: impl Iterator<Item = Result<(DateTime<Utc>, bool), sqlx::Error>>,
    ) -> shared::Result<PlanHistory> {
        let mut history = PlanHistory::default();
        for row in rows {
            match row.map_err(crate::error::job)? {
                (slot, true) => history.unfinished.push(slot),
                (slot, false) => history.latest = history.latest.max(Some(slot)),
            }
        }
        history.unfinished.sort();
        Ok(history)
    }

    /// A row of `run_messages`: what one message of a run has done, and how much of it its run has counted.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct MessageCounts {
        /// Deliveries done and failed for good, as the ledger recorded them.
        pub sent: i64,
        pub failed: i64,
        /// How many of those `job_runs` has counted.
        pub reported_sent: i64,
        pub reported_failed: i64,
        pub skipped: i64,
        pub finished: bool,
    }

    /// What one attempt at a message changes in its run.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct RunDelta {
        pub sent: i64,
        pub failed: i64,
        pub skipped: i64,
        pub messages_done: i64,
    }

    /// A message's counts after one more attempt reported, and what that adds to its run: every delivery the
    /// ledger recorded that the run has not counted yet (a killed worker's too); the task's skips, each
    /// attempt's whole view of the chunk, so the latest replaces the earlier; and the message's finish, once.
    pub fn after_attempt(before: MessageCounts, tally: &WorkTally) -> (MessageCounts, RunDelta) {
        let after = MessageCounts {
            reported_sent: before.sent,
            reported_failed: before.failed,
            skipped: if before.finished { before.skipped } else { tally.skipped as i64 },
            finished: before.finished || tally.message_finished,
            ..before
        };
        let delta = RunDelta {
            sent: after.reported_sent - before.reported_sent,
            failed: after.reported_failed - before.reported_failed,
            skipped: after.skipped - before.skipped,
            messages_done: i64::from(after.finished && !before.finished),
        };
        (after, delta)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn attempt(skipped: u64, finished: bool) -> WorkTally {
            WorkTally { part: 0, skipped, errors: vec![], message_finished: finished }
        }

        #[test]
        fn a_message_counts_once_however_often_it_is_delivered() {
            // Cut short by a deadline after 3 sends: 2 skipped for no activity, not finished.
            let sent = MessageCounts { sent: 3, ..Default::default() };
            let (after, delta) = after_attempt(sent, &attempt(2, false));
            assert_eq!(delta, RunDelta { sent: 3, failed: 0, skipped: 2, messages_done: 0 });
            // A worker killed after 2 more sends never reports; the retry sends the last 2, fails 1, finishes.
            let more = MessageCounts { sent: after.sent + 4, failed: 1, ..after };
            let (after, delta) = after_attempt(more, &attempt(2, true));
            assert_eq!(delta, RunDelta { sent: 4, failed: 1, skipped: 0, messages_done: 1 });
            // A duplicate delivery of the finished message changes nothing.
            let (again, delta) = after_attempt(after, &attempt(3, true));
            assert_eq!(delta, RunDelta::default());
            assert_eq!((again.sent, again.reported_sent, again.skipped, again.finished), (7, 7, 2, true));
        }
    }
}

pub(crate) mod claims {
    use std::collections::{BTreeSet, HashMap};

    use shared::ports::{ClaimState, DeliveryKey, Settled, Settlement};

    /// The keys without repeats, sorted: one statement must not touch a row twice, and every statement that
    /// locks ledger rows (a claim, a settlement) locks them in this one order, so two cannot deadlock.
    pub fn unique(keys: &[DeliveryKey]) -> Vec<DeliveryKey> {
        let unique: BTreeSet<&DeliveryKey> = keys.iter().collect();
        unique.into_iter().cloned().collect()
    }

    /// Each key's state, in input order: won by this claim (with the attempt that fences its settlement), or
    /// why not from its current status. A repeated key is won once.
    pub fn states(
        keys: &[DeliveryKey],
        won: Vec<(String, String, i32)>,
        statuses: Vec<(String, String, String)>,
    ) -> Vec<(DeliveryKey, ClaimState)> {
        let mut won: HashMap<(String, String), i32> =
            won.into_iter().map(|(subject, period, attempt)| ((subject, period), attempt)).collect();
        let statuses: HashMap<(String, String), String> =
            statuses.into_iter().map(|(subject, period, status)| ((subject, period), status)).collect();
        keys.iter()
            .map(|key| {
                let id = (key.subject.clone(), key.period.clone());
                let state = if let Some(attempt) = won.remove(&id) {
                    ClaimState::Won(attempt as u32)
                } else {
                    match statuses.get(&id).map(String::as_str) {
                        Some("done") => ClaimState::Done,
                        Some("failed") => ClaimState::Failed,
                        _ => ClaimState::Busy,
                    }
                };
                (key.clone(), state)
            })
            .collect()
    }

    /// A settlement's outcomes in the order claims lock their rows (`unique`'s), so the two never deadlock.
    pub fn in_lock_order(outcomes: &[Settled]) -> Vec<&Settled> {
        let mut sorted: Vec<&Settled> = outcomes.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        sorted
    }

    /// The status and last error a settlement writes.
    pub fn settled(settlement: &Settlement) -> (&'static str, Option<&str>) {
        match settlement {
            Settlement::Done => ("done", None),
            Settlement::Retry(error) => ("retryable", Some(error)),
            Settlement::Failed(error) => ("failed", Some(error)),
        }
    }
}

pub(crate) mod activity {
    use std::collections::BTreeMap;

    use chrono::NaiveDate;
    use shared::ports::{DayActivity, RecordLine, WorkoutLine};

    /// user, local day, name, minutes, calories, volume (Σ weight × reps of its sets)
    pub type WorkoutRow = (i64, NaiveDate, String, i64, i64, f64);
    /// user, local day, exercise, weight, reps
    pub type RecordRow = (i64, NaiveDate, String, f64, i64);

    /// One `DayActivity` per (user, day) with a workout, from rows ordered by time within each day.
    pub fn assemble(
        workouts: Vec<WorkoutRow>,
        records: Vec<RecordRow>,
        streaks: Vec<(i64, NaiveDate, i64)>,
    ) -> Vec<DayActivity> {
        let mut days: BTreeMap<(i64, NaiveDate), DayActivity> = BTreeMap::new();
        for (user_id, day, name, duration_minutes, calories, volume) in workouts {
            let activity = days.entry((user_id, day)).or_insert_with(|| DayActivity {
                user_id,
                day,
                workouts: vec![],
                volume_kg: 0.0,
                records: vec![],
                streak_days: 0,
            });
            activity.workouts.push(WorkoutLine { name, duration_minutes, calories });
            activity.volume_kg += volume;
        }
        for (user_id, day, exercise, weight_kg, reps) in records {
            if let Some(activity) = days.get_mut(&(user_id, day)) {
                activity.records.push(RecordLine { exercise, weight_kg, reps });
            }
        }
        for (user_id, day, streak) in streaks {
            if let Some(activity) = days.get_mut(&(user_id, day)) {
                activity.streak_days = streak;
            }
        }
        days.into_values().collect()
    }
}

pub(crate) mod weekly_report {
    use std::collections::BTreeMap;

    use chrono::{Days, NaiveDate};
    use shared::ports::{RecordLine, WeekActivity};

    /// Weeks in a report's chart, the report's own last.
    const WEEKS: u64 = 8;

    /// user, Monday, local day, workouts, minutes, calories, volume (0 outside the report's own week)
    pub type DayRow = (i64, NaiveDate, NaiveDate, i64, i64, i64, f64);
    /// user, Monday, exercise, weight, reps
    pub type RecordRow = (i64, NaiveDate, String, f64, i64);

    /// The first day of the chart ending with the week starting on `monday`, and the day after that week.
    pub fn window(monday: NaiveDate) -> (NaiveDate, NaiveDate) {
        (monday - Days::new(7 * (WEEKS - 1)), monday + Days::new(7))
    }

    /// One `WeekActivity` per (user, Monday) with a workout that week, from the days of its chart with one.
    pub fn assemble(days: Vec<DayRow>, records: Vec<RecordRow>) -> Vec<WeekActivity> {
        let mut weeks: BTreeMap<(i64, NaiveDate), WeekActivity> = BTreeMap::new();
        for (user_id, monday, day, workouts, minutes, calories, volume) in days {
            let week = weeks.entry((user_id, monday)).or_insert_with(|| WeekActivity {
                user_id,
                monday,
                workouts: 0,
                minutes: 0,
                calories: 0,
                volume_kg: 0.0,
                records: vec![],
                best_day: monday,
                best_day_minutes: -1,
                minutes_by_week: vec![0; WEEKS as usize],
            });
            let nth = (day - window(monday).0).num_days() / 7;
            week.minutes_by_week[nth as usize] += minutes;
            if day >= monday {
                week.workouts += workouts;
                week.minutes += minutes;
                week.calories += calories;
                week.volume_kg += volume;
                if minutes > week.best_day_minutes || (minutes == week.best_day_minutes && day < week.best_day) {
                    (week.best_day, week.best_day_minutes) = (day, minutes);
                }
            }
        }
        for (user_id, monday, exercise, weight_kg, reps) in records {
            if let Some(week) = weeks.get_mut(&(user_id, monday)) {
                week.records.push(RecordLine { exercise, weight_kg, reps });
            }
        }
        // A user active only in the weeks before has no report.
        weeks.into_values().filter(|week| week.workouts > 0).collect()
    }
}

pub(crate) mod monthly_report {
    use chrono::{Datelike, Months, NaiveDate};
    use shared::ports::{MonthActivity, Standing};

    /// user, first day, workouts, minutes, best week's Monday, and from the standings (absent if the user is
    /// not in them): rank, users ranked, users ranked below
    pub type MonthRow = (i64, NaiveDate, i64, i64, NaiveDate, Option<i64>, Option<i64>, Option<i64>);

    /// The month starting on `first` as [first, next month's first). Any other day is refused: standings built
    /// for a wrong "month" would stay, as built once.
    pub fn bounds(first: NaiveDate) -> shared::Result<(NaiveDate, NaiveDate)> {
        match first.checked_add_months(Months::new(1)) {
            Some(next) if first.day() == 1 => Ok((first, next)),
            _ => Err(shared::Error::permanent(format!("{first} is not the first day of a month"))),
        }
    }

    pub fn activity(
        (user_id, month, workouts, minutes, best_week, rank, ranked, below): MonthRow,
    ) -> shared::Result<MonthActivity> {
        let (first, next) = bounds(month)?;
        let days = (next - first).num_days() as f64;
        let standing = match (rank, ranked, below) {
            (Some(rank), Some(ranked), Some(below)) if ranked > 0 => {
                Some(Standing { rank, ranked, percentile: 100.0 * below as f64 / ranked as f64 })
            }
            _ => None,
        };
        Ok(MonthActivity {
            user_id,
            month,
            workouts,
            minutes,
            minutes_per_week: minutes as f64 / (days / 7.0),
            best_week,
            standing,
        })
    }
}

pub(crate) mod inactivity_reminders {
    use chrono::{Days, NaiveDate};
    use shared::ports::Inactive;

    /// The latest day a last workout (or a sign-up) may be on for its user to count as inactive.
    pub fn latest_active(today: NaiveDate, days: u32) -> NaiveDate {
        today - Days::new(u64::from(days))
    }

    /// From a user's id, last workout and sign-up day.
    pub fn inactive((user_id, last_workout, signed_up): (i64, Option<NaiveDate>, NaiveDate)) -> Inactive {
        let stretch_start = last_workout.map_or(signed_up, |day| day + Days::new(1));
        Inactive { user_id, last_workout, stretch_start }
    }
}

pub(crate) mod challenge_notifications {
    use chrono::NaiveDate;
    use shared::ports::{ChallengeEdge, ChallengeNotice};

    /// user, challenge, title, starts on, ends on
    pub type ParticipationRow = (i64, i64, String, NaiveDate, NaiveDate);

    /// A notice per edge of each participation that falls on `tomorrow`: two for a one-day challenge.
    pub fn notices(rows: Vec<ParticipationRow>, tomorrow: NaiveDate) -> Vec<ChallengeNotice> {
        let edges = [ChallengeEdge::Starts, ChallengeEdge::Ends];
        rows.into_iter()
            .flat_map(|(user_id, challenge_id, title, starts_on, ends_on)| {
                edges
                    .into_iter()
                    .filter(move |edge| tomorrow == if *edge == ChallengeEdge::Starts { starts_on } else { ends_on })
                    .map(move |edge| ChallengeNotice {
                        user_id,
                        challenge_id,
                        title: title.clone(),
                        starts_on,
                        ends_on,
                        edge,
                    })
            })
            .collect()
    }
}
pub(crate) mod contact_rows {
    use shared::ports::{Channel, Choice, Contact, Device, Kind};

    /// The users' columns, whether their address is on the suppression list, then the user's enabled devices
    /// as a JSON array of `[endpoint_arn, platform]` and their choices as one of `[kind, channel, allowed]`, as
    /// both dialects aggregate them.
    pub type ContactRow = (i64, String, String, Option<String>, String, bool, bool, String, String);

    /// Whether `u`'s address is on the suppression list, as both dialects read it beside the user's row: one
    /// primary-key probe per user, in the contacts' one statement.
    pub const SUPPRESSED: &str = "EXISTS (SELECT 1 FROM mail_suppressions s WHERE s.address = lower(trim(u.email)))";

    pub fn contact(
        (user_id, name, email, phone, time_zone, email_opt_in, email_suppressed, devices, choices): ContactRow,
    ) -> Result<Contact, sqlx::Error> {
        let decode = |e: String| sqlx::Error::Decode(e.into());
        let devices: Vec<(String, String)> = serde_json::from_str(&devices).map_err(|e| decode(e.to_string()))?;
        let choices: Vec<(String, String, bool)> = serde_json::from_str(&choices).map_err(|e| decode(e.to_string()))?;
        let choices = choices
            .into_iter()
            .map(|(kind, channel, allowed)| match (Kind::parse(&kind), Channel::parse(&channel)) {
                (Some(kind), Some(channel)) => Ok(Choice { kind, channel, allowed }),
                _ => Err(decode(format!("unknown preference {kind}/{channel}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Contact {
            user_id,
            name,
            email,
            phone,
            time_zone,
            email_opt_in,
            email_suppressed,
            devices: devices.into_iter().map(|(endpoint_arn, platform)| Device { endpoint_arn, platform }).collect(),
            choices,
        })
    }
}

pub(crate) mod suppression_rows {
    use chrono::{DateTime, Utc};
    use shared::ports::{SuppressedAddress, SuppressionReason};

    /// Records one feedback on one address, in both dialects (SQLite's placeholders `?n` for `$n`): address,
    /// reason, feedback id, subtype, time. A known address takes the feedback as its latest, widens its times
    /// and counts one more; the feedback already recorded as its latest (SNS delivered it again) changes nothing.
    pub const UPSERT: &str = "INSERT INTO mail_suppressions AS s
             (address, reason, feedback_id, subtype, first_at, last_at, count)
         VALUES ($1, $2, $3, $4, $5, $5, 1)
         ON CONFLICT (address) DO UPDATE SET
             reason = excluded.reason,
             feedback_id = excluded.feedback_id,
             subtype = excluded.subtype,
             first_at = CASE WHEN excluded.first_at < s.first_at THEN excluded.first_at ELSE s.first_at END,
             last_at = CASE WHEN excluded.last_at > s.last_at THEN excluded.last_at ELSE s.last_at END,
             count = s.count + 1
         WHERE s.feedback_id <> excluded.feedback_id";

    pub const LIST: &str = "SELECT address, reason, feedback_id, subtype, first_at, last_at, count
         FROM mail_suppressions ORDER BY address";

    pub const LIFT: &str = "DELETE FROM mail_suppressions WHERE address = $1";

    /// A row as both dialects read it, their times decoded.
    pub type Row<T> = (String, String, String, Option<String>, T, T, i64);

    pub fn row<T>(
        (address, reason, feedback_id, subtype, first_at, last_at, count): Row<T>,
        time: impl Fn(T) -> Result<DateTime<Utc>, sqlx::Error>,
    ) -> Result<SuppressedAddress, sqlx::Error> {
        let reason = SuppressionReason::parse(&reason)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown suppression reason {reason:?}").into()))?;
        Ok(SuppressedAddress {
            address,
            reason,
            feedback_id,
            subtype,
            first_at: time(first_at)?,
            last_at: time(last_at)?,
            count,
        })
    }
}

/// An outbox row as the port's event; a kind this code does not know is a bug, said plainly.
pub(crate) fn order_event(
    id: i64,
    order_id: i64,
    kind: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> shared::Result<shared::ports::OrderEvent> {
    let kind = shared::ports::OrderEventKind::parse(kind)
        .ok_or_else(|| shared::Error::permanent(format!("order_events row {id} has an unknown kind {kind:?}")))?;
    Ok(shared::ports::OrderEvent { id, order_id, kind, at })
}

pub(crate) mod renewal_reminders {
    use chrono::NaiveDate;
    use shared::ports::Renewal;

    /// A subscription with its product, as both dialects' SQL selects it (columns named as the fields).
    #[derive(sqlx::FromRow)]
    pub struct RenewalRow {
        id: i64,
        user_id: i64,
        status: String,
        next_delivery_date: NaiveDate,
        product: Option<String>,
        quantity: i64,
        amount_cents: i64,
        currency: String,
        payment_method: String,
        frequency: String,
        interval_days: Option<i64>,
        anchor_day: Option<i64>,
    }

    impl From<RenewalRow> for Renewal {
        fn from(row: RenewalRow) -> Self {
            Renewal {
                subscription_id: row.id,
                user_id: row.user_id,
                status: row.status,
                next_delivery_date: row.next_delivery_date,
                product: row.product,
                quantity: row.quantity,
                amount_cents: row.amount_cents,
                currency: row.currency,
                payment_method: row.payment_method,
                frequency: row.frequency,
                interval_days: row.interval_days,
                anchor_day: row.anchor_day,
            }
        }
    }
}

pub(crate) mod order_notifications {
    use chrono::NaiveDate;
    use shared::ports::{OrderLine, OrderNotice};

    /// An order as both dialects' SQL selects it (columns named as the fields), its lines a JSON array of
    /// `[product, quantity, unit price]`.
    #[derive(sqlx::FromRow)]
    pub struct NoticeRow {
        order_id: i64,
        user_id: i64,
        subscription_id: Option<i64>,
        delivery_date: NaiveDate,
        status: String,
        total_cents: i64,
        currency: String,
        retry_on: Option<NaiveDate>,
        decline_reason: Option<String>,
        lines: String,
    }

    impl TryFrom<NoticeRow> for OrderNotice {
        type Error = shared::Error;

        fn try_from(row: NoticeRow) -> shared::Result<Self> {
            let lines: Vec<(String, i64, i64)> = serde_json::from_str(&row.lines).map_err(|e| {
                shared::Error::permanent(format!("order {}'s lines do not read back: {e}", row.order_id))
            })?;
            Ok(OrderNotice {
                order_id: row.order_id,
                user_id: row.user_id,
                subscription_id: row.subscription_id,
                delivery_date: row.delivery_date,
                status: row.status,
                total_cents: row.total_cents,
                currency: row.currency,
                lines: lines
                    .into_iter()
                    .map(|(product, quantity, unit_price_cents)| OrderLine { product, quantity, unit_price_cents })
                    .collect(),
                decline_reason: row.decline_reason,
                retry_on: row.retry_on,
            })
        }
    }
}

/// The cleanups' sweeps as SQL, the same in both dialects: each swept table's columns, and each sweep's
/// condition over the alias `t` of its table. Only these static names reach the SQL: a message names a sweep,
/// never a table or a column.
pub(crate) mod sweeps {
    use shared::ports::{Sweep, Swept};

    /// A swept table: the app's, keyed by `id`.
    pub struct Table {
        pub name: &'static str,
        /// The column a row's age is read from.
        pub age: &'static str,
        /// The column of its user (of an audit log, its actor).
        pub owner: &'static str,
        /// A text column the app fills, seeded as this prefix and the row's id (unique where the app's is).
        pub text: Option<(&'static str, &'static str)>,
    }

    pub fn table(table: Swept) -> Table {
        let (name, age, owner, text) = match table {
            Swept::Carts => ("carts", "updated_at", "user_id", None),
            Swept::PasswordResetTokens => {
                ("password_reset_tokens", "expires_at", "user_id", Some(("token_hash", "reset-")))
            }
            Swept::EmailVerificationTokens => {
                ("email_verification_tokens", "expires_at", "user_id", Some(("token_hash", "verify-")))
            }
            Swept::OtpCodes => ("otp_codes", "expires_at", "user_id", Some(("code_hash", "otp-"))),
            Swept::Sessions => ("sessions", "last_seen_at", "user_id", Some(("token_hash", "session-"))),
            Swept::AuditLogs => ("audit_logs", "created_at", "actor_id", Some(("action", "seeded "))),
            Swept::TempUploads => ("temp_uploads", "created_at", "user_id", Some(("object_key", "tmp/upload-"))),
        };
        Table { name, age, owner, text }
    }

    /// The rows of `sweep` due before the cutoff bound as `cutoff` (a placeholder of the dialect): old enough,
    /// and its own condition. Written over `t`.
    pub fn due(sweep: Sweep, cutoff: &str) -> String {
        let condition = match sweep {
            Sweep::EmptyCarts => " AND NOT EXISTS (SELECT 1 FROM cart_items i WHERE i.cart_id = t.id)",
            Sweep::FilledCarts => " AND EXISTS (SELECT 1 FROM cart_items i WHERE i.cart_id = t.id)",
            _ => "",
        };
        format!("t.{} < {cutoff}{condition}", table(sweep.table()).age)
    }

    /// The statement cutting `sweep`'s due rows into ranges of at most `per_range` in id order, as
    /// (lo, hi, candidates) rows in order: the candidates numbered in id order, then grouped by their number
    /// divided by the range size.
    pub fn ranges(sweep: Sweep, cutoff: &str, per_range: &str) -> String {
        format!(
            "SELECT min(id), max(id), count(*) FROM (
                 SELECT t.id, (row_number() OVER (ORDER BY t.id) - 1) / {per_range} AS bucket
                 FROM {} t WHERE {}) candidates
             GROUP BY bucket ORDER BY bucket",
            table(sweep.table()).name,
            due(sweep, cutoff)
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn every_sweep_checks_its_age_and_the_carts_their_items() {
            assert_eq!(
                due(Sweep::EmptyCarts, "$3"),
                "t.updated_at < $3 AND NOT EXISTS (SELECT 1 FROM cart_items i WHERE i.cart_id = t.id)"
            );
            assert!(due(Sweep::FilledCarts, "?3").contains(" AND EXISTS (SELECT 1 FROM cart_items"));
            assert_eq!(due(Sweep::OtpCodes, "?1"), "t.expires_at < ?1");
            assert_eq!(due(Sweep::IdleSessions, "?1"), "t.last_seen_at < ?1");
        }
    }
}

pub(crate) mod boards {
    use chrono::{DateTime, Duration, NaiveDate, Utc};
    use shared::ports::{Board, BoardEntry, BoardSpec};

    /// A parameter of a board's entries statement, bound after the version number (`$1`, `?1`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Arg {
        Date(NaiveDate),
        Int(i64),
    }

    /// The parameters each kind of board's statement takes after the version, in order; both dialects' SQL
    /// is written to them.
    pub fn args(spec: &BoardSpec) -> Vec<Arg> {
        use Arg::*;
        match spec {
            BoardSpec::WeekVolume { monday } | BoardSpec::WeekWorkouts { monday } => {
                vec![Date(*monday), Date(*monday + Duration::days(6))]
            }
            BoardSpec::Streak { today } => vec![Date(*today)],
            BoardSpec::Challenge { id, starts_on, ends_on } => vec![Int(*id), Date(*starts_on), Date(*ends_on)],
            BoardSpec::TrendingWorkouts { last_day, min_recent }
            | BoardSpec::TrendingExercises { last_day, min_recent } => vec![Date(*last_day), Int(*min_recent)],
        }
    }

    /// A board's current version with one of its entries (none for an empty board), as both dialects read it
    /// (PostgreSQL casting its integers to bigint).
    #[derive(sqlx::FromRow)]
    pub struct BoardRow {
        version: i64,
        board: String,
        slot: DateTime<Utc>,
        built_at: DateTime<Utc>,
        total: i64,
        position: Option<i64>,
        rank: Option<i64>,
        subject_id: Option<i64>,
        label: Option<String>,
        score: Option<f64>,
        recent: Option<i64>,
        previous: Option<i64>,
    }

    /// The board the rows of one read make, entries in position order; none without rows.
    pub fn board(rows: Vec<BoardRow>) -> Option<Board> {
        let first = rows.first()?;
        let mut board = Board {
            name: first.board.clone(),
            version: first.version,
            slot: first.slot,
            built_at: first.built_at,
            total: first.total,
            entries: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            if let (Some(position), Some(rank), Some(score)) = (row.position, row.rank, row.score) {
                board.entries.push(BoardEntry {
                    position,
                    rank,
                    subject_id: row.subject_id,
                    label: row.label,
                    score,
                    recent: row.recent,
                    previous: row.previous,
                });
            }
        }
        Some(board)
    }
}

pub(crate) mod user_stats {
    use chrono::{DateTime, NaiveDate, Utc};
    use shared::ports::{ExerciseRecord, UserStats};

    /// A row of `user_stats` as both dialects read it (PostgreSQL casting its integers to bigint and its JSON
    /// to text).
    #[derive(sqlx::FromRow)]
    pub struct StatsRow {
        user_id: i64,
        window_start: NaiveDate,
        window_end: NaiveDate,
        workouts: i64,
        workouts_per_week: f64,
        minutes: i64,
        volume_kg: f64,
        pr_sets: i64,
        records: String,
        computed_at: DateTime<Utc>,
    }

    impl TryFrom<StatsRow> for UserStats {
        type Error = shared::Error;

        fn try_from(row: StatsRow) -> shared::Result<Self> {
            let records: Vec<ExerciseRecord> = serde_json::from_str(&row.records).map_err(|e| {
                shared::Error::permanent(format!("user_stats.records of user {} is not as written: {e}", row.user_id))
            })?;
            Ok(UserStats {
                user_id: row.user_id,
                window_start: row.window_start,
                window_end: row.window_end,
                workouts: row.workouts,
                workouts_per_week: row.workouts_per_week,
                minutes: row.minutes,
                volume_kg: row.volume_kg,
                pr_sets: row.pr_sets,
                records,
                computed_at: row.computed_at,
            })
        }
    }
}

pub(crate) mod requests {
    use chrono::{DateTime, Utc};
    use shared::ports::{Request, RequestOutcome, RequestRecord, RequestStart, RequestState};

    /// Why a request that could not be taken was not: finished, held by another worker, or not this caller's
    /// (another kind or user under the same id). `None` when it could be taken after all (it changed since).
    pub fn not_started(kind: &str, request: &Request, found: RequestRecord) -> shared::Result<Option<RequestStart>> {
        if found.kind != kind || found.user_id != request.user_id {
            return Err(shared::Error::permanent(format!(
                "request {} is user {}'s {}, not user {}'s {kind}: an id names one request",
                found.id, found.user_id, found.kind, request.user_id
            )));
        }
        Ok(match (found.state, found.held_until) {
            (RequestState::Running, Some(until)) => Some(RequestStart::Held(until)),
            (RequestState::Succeeded | RequestState::Failed, _) => Some(RequestStart::Finished(found)),
            _ => None,
        })
    }

    /// The columns an outcome writes.
    pub struct Row {
        pub state: RequestState,
        pub result: Option<serde_json::Value>,
        pub reason: Option<String>,
        pub redrivable: bool,
        pub retry_at: Option<DateTime<Utc>>,
        pub finished_at: Option<DateTime<Utc>>,
    }

    impl Row {
        pub fn of(outcome: &RequestOutcome, now: DateTime<Utc>) -> Self {
            let row = Self {
                state: RequestState::Queued,
                result: None,
                reason: None,
                redrivable: false,
                retry_at: None,
                finished_at: None,
            };
            match outcome {
                RequestOutcome::Succeeded(result) => {
                    Self { state: RequestState::Succeeded, result: Some(result.clone()), finished_at: Some(now), ..row }
                }
                RequestOutcome::Queued { reason, retry_at } => {
                    Self { reason: Some(reason.clone()), retry_at: Some(*retry_at), ..row }
                }
                RequestOutcome::Failed { reason, redrivable } => Self {
                    state: RequestState::Failed,
                    reason: Some(reason.clone()),
                    redrivable: *redrivable,
                    finished_at: Some(now),
                    ..row
                },
            }
        }
    }
}
