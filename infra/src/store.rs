//! What the PostgreSQL and SQLite stores share beyond their SQL: turning a claim's rows into per-key states,
//! rows of activity into `DayActivity`, and a user's row with its devices and choices into a `Contact`. The SQL differs by dialect; this does not.

pub(crate) mod run_rows {
    use shared::ports::{RunRecord, RunStart, WorkTally};

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

    /// How many of the settled rows' new statuses are done, and how many failed for good.
    pub fn done_and_failed<'a>(statuses: impl IntoIterator<Item = &'a str>) -> (i64, i64) {
        statuses.into_iter().fold((0, 0), |(done, failed), status| match status {
            "done" => (done + 1, failed),
            "failed" => (done, failed + 1),
            _ => (done, failed),
        })
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
    use shared::ports::{DayActivity, Recipient, RecordLine, WorkoutLine};

    /// user, local day, name, minutes, calories, volume (Σ weight × reps of its sets)
    pub type WorkoutRow = (i64, NaiveDate, String, i64, i64, f64);
    /// user, local day, exercise, weight, reps
    pub type RecordRow = (i64, NaiveDate, String, f64, i64);

    pub fn recipient(
        (user_id, name, email, time_zone, email_opt_in): (i64, String, String, String, bool),
    ) -> Recipient {
        Recipient { user_id, name, email, time_zone, email_opt_in }
    }

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

pub(crate) mod contact_rows {
    use shared::ports::{Channel, Choice, Contact, Device, Kind};

    /// The users' columns, then the user's enabled devices as a JSON array of `[endpoint_arn, platform]` and
    /// their choices as one of `[kind, channel, allowed]`, as both dialects aggregate them.
    pub type ContactRow = (i64, String, String, Option<String>, String, bool, String, String);

    pub fn contact(
        (user_id, name, email, phone, time_zone, email_opt_in, devices, choices): ContactRow,
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
            devices: devices.into_iter().map(|(endpoint_arn, platform)| Device { endpoint_arn, platform }).collect(),
            choices,
        })
    }
}
