//! `jobs simulate` over a month that crosses the end of summer time in Europe (25 October) and the United States
//! (1 November), with five hours of downtime: exact slot counts, and every task's messages per channel equal to
//! what is computed here from the seeded data alone — who was due when, on which channel their choices and
//! devices put them — independently of the tasks' code; and the cleanups' deletions equal to the seeded rows
//! past each one's age at its last run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use jobs::simulate::{self, Sent, Spec, TaskTally};
use shared::{ports::Swept, time::wall_clock_instant};
use sqlx::{Connection, SqliteConnection};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const START: &str = "2026-10-15T00:00:00Z";
const END: &str = "2026-11-15T00:00:00Z";
const DOWN_FROM: &str = "2026-10-25T00:30:00Z";
const DOWN_TO: &str = "2026-10-25T05:30:00Z";
const INACTIVITY_DAYS: i64 = 3;

/// A seeded user as the expectations need them.
struct User {
    zone: Option<Tz>,
    opted_in: bool,
    phone: bool,
    devices: bool,
    /// (kind, channel) → allowed, as chosen.
    choices: HashMap<(String, String), bool>,
    /// Every workout the simulation wrote: its local date and when it was written (as it ended).
    workouts: Vec<(NaiveDate, DateTime<Utc>)>,
    signed_up: NaiveDate,
}

impl User {
    fn allows(&self, kind: &str, channel: &str) -> bool {
        let choice = self.choices.get(&(kind.to_owned(), channel.to_owned())).copied();
        match channel {
            "email" => self.opted_in && choice.unwrap_or(true),
            "push" => choice.unwrap_or(true),
            _ => choice.unwrap_or(false),
        }
    }

    /// The channel a message of `kind` offered on `offered` goes by: push, else SMS, else email.
    fn channel(&self, kind: &str, offered: &[&str]) -> Option<&'static str> {
        let reachable = |c: &str| match c {
            "push" => self.devices,
            "sms" => self.phone,
            _ => true,
        };
        ["push", "sms", "email"].into_iter().find(|c| offered.contains(c) && self.allows(kind, c) && reachable(c))
    }

    fn trained_between(&self, first: NaiveDate, last: NaiveDate) -> bool {
        self.workouts.iter().any(|(d, _)| first <= *d && *d <= last)
    }

    /// The local date of the last workout written by `at`.
    fn last_written_by(&self, at: DateTime<Utc>) -> Option<NaiveDate> {
        self.workouts.iter().filter(|(_, written)| *written <= at).map(|(d, _)| *d).max()
    }
}

/// The workouts the simulation wrote, each as it ended: (user, local date, when written).
async fn workouts(conn: &mut SqliteConnection) -> Vec<(i64, NaiveDate, DateTime<Utc>)> {
    let rows: Vec<(i64, NaiveDate, String, i64)> =
        sqlx::query_as("SELECT user_id, local_date, started_at, duration_minutes FROM workouts")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(user, day, started, minutes)| (user, day, utc(&started) + Duration::minutes(minutes)))
        .collect()
}

/// The first hourly slot at or after `t`.
fn hourly_slot(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp((t.timestamp() + 3599).div_euclid(3600) * 3600, 0).unwrap()
}

/// The hourly slot that reaches `at` local on `date` in `zone`.
fn slot(zone: Tz, date: NaiveDate, at: NaiveTime) -> DateTime<Utc> {
    hourly_slot(wall_clock_instant(zone, date, at))
}

/// Whether the hourly slot that reaches `at` local on `date` in `zone` is one of the simulated ones.
fn in_range(zone: Tz, date: NaiveDate, at: NaiveTime) -> bool {
    (utc(START)..utc(END)).contains(&slot(zone, date, at))
}

/// When an hourly task's slot is worked: at the slot, or, for one in the downtime, at the first slot after it.
fn worked_at(slot: DateTime<Utc>) -> DateTime<Utc> {
    if (utc(DOWN_FROM)..utc(DOWN_TO)).contains(&slot) {
        hourly_slot(utc(DOWN_TO))
    } else {
        slot
    }
}

fn count(sent: &mut Sent, channel: Option<&str>) {
    match channel {
        Some("email") => sent.emails += 1,
        Some("sms") => sent.sms += 1,
        Some("push") => sent.pushes += 1,
        _ => {}
    }
}

async fn users(conn: &mut SqliteConnection) -> HashMap<i64, User> {
    let rows: Vec<(i64, String, bool, Option<String>, String)> =
        sqlx::query_as("SELECT id, time_zone, email_opt_in, phone, created_at FROM users")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let mut users: HashMap<i64, User> = rows
        .into_iter()
        .map(|(id, zone, opted_in, phone, created)| {
            let user = User {
                zone: zone.parse().ok(),
                opted_in,
                phone: phone.is_some_and(|p| shared::channels::is_e164(&p)),
                devices: false,
                choices: HashMap::new(),
                workouts: vec![],
                signed_up: created[..10].parse().unwrap(),
            };
            (id, user)
        })
        .collect();
    let devices: Vec<(i64,)> =
        sqlx::query_as("SELECT DISTINCT user_id FROM devices WHERE enabled").fetch_all(&mut *conn).await.unwrap();
    for (id,) in devices {
        users.get_mut(&id).unwrap().devices = true;
    }
    let choices: Vec<(i64, String, String, bool)> =
        sqlx::query_as("SELECT user_id, kind, channel, allowed FROM preferences").fetch_all(&mut *conn).await.unwrap();
    for (id, kind, channel, allowed) in choices {
        users.get_mut(&id).unwrap().choices.insert((kind, channel), allowed);
    }
    for (id, day, written) in workouts(conn).await {
        users.get_mut(&id).unwrap().workouts.push((day, written));
    }
    users
}

/// What each task must have sent, computed from the data and the rules the README states.
async fn expected(db: &std::path::Path) -> HashMap<&'static str, Sent> {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let users = users(&mut conn).await;
    let at = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    let days: Vec<NaiveDate> = {
        let first = utc(START).date_naive() - Duration::days(2);
        (0..36).map(|d| first + Duration::days(d)).collect()
    };
    let mut sent: HashMap<&'static str, Sent> = HashMap::new();
    for user in users.values() {
        let Some(zone) = user.zone else { continue };
        for &day in &days {
            // daily-summary: at 06:00, the day before, if they trained.
            if in_range(zone, day, at(6)) && user.trained_between(day - Duration::days(1), day - Duration::days(1)) {
                count(sent.entry("daily-summary").or_default(), user.channel("reports", &["email"]));
            }
            // weekly-report: Monday 08:00, the week before, if they trained.
            if day.weekday() == Weekday::Mon
                && in_range(zone, day, at(8))
                && user.trained_between(day - Duration::days(7), day - Duration::days(1))
            {
                count(sent.entry("weekly-report").or_default(), user.channel("reports", &["email"]));
            }
            // monthly-report: the 1st at 09:00, the month before, if they trained.
            if day.day() == 1 && in_range(zone, day, at(9)) {
                let month = (day - Duration::days(1)).with_day(1).unwrap();
                if user.trained_between(month, day - Duration::days(1)) {
                    count(sent.entry("monthly-report").or_default(), user.channel("reports", &["email"]));
                }
            }
        }
        // inactivity-reminders: at 18:00, one per stretch of INACTIVITY_DAYS or more without a workout, the last
        // workout being the last one written by the time the slot is worked.
        let stretches: BTreeSet<NaiveDate> = days
            .iter()
            .filter(|&&day| in_range(zone, day, at(18)))
            .filter_map(|&day| {
                let last = user.last_written_by(worked_at(slot(zone, day, at(18))));
                let inactive = last.unwrap_or(user.signed_up) <= day - Duration::days(INACTIVITY_DAYS);
                inactive.then(|| last.map_or(user.signed_up, |d| d + Duration::days(1)))
            })
            .collect();
        for _ in stretches {
            count(
                sent.entry("inactivity-reminders").or_default(),
                user.channel("reminders", &["push", "sms", "email"]),
            );
        }
    }
    // challenge-notifications: at 09:00 the day before each edge of each well-formed challenge joined.
    let joined: Vec<(i64, NaiveDate, NaiveDate)> = sqlx::query_as(
        "SELECT p.user_id, c.starts_on, c.ends_on FROM challenges c JOIN challenge_participants p ON p.challenge_id = c.id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for (user_id, starts, ends) in joined {
        let user = &users[&user_id];
        let Some(zone) = user.zone else { continue };
        if ends < starts {
            continue;
        }
        for edge in [starts, ends] {
            if in_range(zone, edge - Duration::days(1), at(9)) {
                count(
                    sent.entry("challenge-notifications").or_default(),
                    user.channel("challenges", &["push", "sms", "email"]),
                );
            }
        }
    }
    sent.insert("renewal-reminders", Sent { emails: renewal_reminders(&mut conn).await, sms: 0, pushes: 0 });
    // order-notifications: every event the shop wrote, by email always (transactional) and by SMS to a valid
    // phone unless its owner turned SMS off for orders; no SMS where the user's night cannot be known.
    let events: Vec<i64> =
        sqlx::query_scalar("SELECT o.user_id FROM order_events e JOIN orders o ON o.id = e.order_id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let orders = sent.entry("order-notifications").or_default();
    for user_id in events {
        let user = &users[&user_id];
        orders.emails += 1;
        let sms_allowed = user.choices.get(&("orders".to_owned(), "sms".to_owned())).copied().unwrap_or(true);
        if user.zone.is_some() && user.phone && sms_allowed {
            orders.sms += 1;
        }
    }
    sent
}

/// renewal-reminders: one email at 00:00 UTC the day before each scheduled delivery (every date of the
/// subscription's frequency from its first), while the subscription is active; the card that always declines
/// pauses its subscription 5 days after its first delivery, and a frequency the code does not know gets none.
/// The first delivery date is the subscription's first order's (each first delivery makes an order: paid,
/// declined or skipped for want of stock).
async fn renewal_reminders(conn: &mut SqliteConnection) -> u64 {
    // frequency, interval_days, anchor_day, payment_method, first delivery
    type Subscription = (String, Option<i64>, Option<i64>, String, NaiveDate);
    let rows: Vec<Subscription> = sqlx::query_as(
        "SELECT s.frequency, s.interval_days, s.anchor_day, s.payment_method, min(o.delivery_date)
         FROM subscriptions s JOIN orders o ON o.subscription_id = s.id GROUP BY s.id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let (first_slot, last_slot) = (utc(START).date_naive(), utc(END).date_naive() - Duration::days(1));
    let mut emails = 0;
    for (frequency, interval_days, anchor_day, method, first) in rows {
        let next = |date: NaiveDate| -> Option<NaiveDate> {
            match frequency.as_str() {
                "weekly" => Some(date + Duration::days(7)),
                "every_n_days" => Some(date + Duration::days(interval_days?)),
                "monthly" => {
                    let first_of_next = (date.with_day(1)? + chrono::Months::new(1)).with_day(1)?;
                    let last_day = (first_of_next + chrono::Months::new(1)).pred_opt()?.day();
                    first_of_next.with_day((anchor_day? as u32).min(last_day))
                }
                _ => None,
            }
        };
        let mut delivery = Some(first);
        while let Some(date) = delivery.filter(|d| *d - Duration::days(1) <= last_slot) {
            if date - Duration::days(1) >= first_slot {
                emails += 1;
            }
            delivery = if method == "pm_decline_always" { None } else { next(date) };
        }
    }
    emails
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_across_dst_with_downtime_sends_each_message_once_on_the_right_channel() {
    let data_dir = std::env::temp_dir().join(format!("jobs-simulate-{}", std::process::id()));
    let spec = Spec {
        from: "2026-10-15".parse().unwrap(),
        to: "2026-11-14".parse().unwrap(),
        // Slots 01:00 to 05:00 on the night Europe leaves summer time never fire.
        downtime: Some((utc(DOWN_FROM), utc(DOWN_TO))),
        data_dir: data_dir.clone(),
        users: 120,
    };
    let tallies = simulate::run(&spec, |_, _| {}).await.unwrap();
    let expected = expected(&data_dir.join("simulate.db")).await;
    let tally = |task: &str| tallies.iter().find(|t| t.task == task).unwrap_or_else(|| panic!("{task} simulated"));

    let daily = tally("daily-summary");
    assert!(daily.sent.emails > 500, "the data set is big enough to mean something: {daily:?}");
    assert_eq!(
        daily,
        &TaskTally {
            task: "daily-summary".into(),
            fired: 31 * 24 - 5,
            missed: 5,
            caught_up: 5,
            skipped: 0,
            messages: daily.messages,
            sent: expected["daily-summary"],
            duplicates: 0,
            retries: 0,
            dead_lettered: 0,
            deleted: 0,
            kept: 0,
        }
    );
    for task in shared::tasks::NAMES {
        let t = tally(task);
        assert_eq!(t.sent, expected.get(task).copied().unwrap_or_default(), "{task}: {t:?}");
        assert_eq!((t.duplicates, t.dead_lettered), (0, 0), "{task}: {t:?}");
        if task.contains("cleanup") || *task == "audit-log-retention" {
            // The cleanups catch nothing up: the next run deletes all the missed one would have.
            let missed = if *task == "temp-data-cleanup" { 0 } else { 1 };
            assert_eq!((t.missed, t.caught_up, t.skipped), (missed, 0, missed), "{task}: {t:?}");
        } else {
            assert_eq!(t.caught_up, t.missed, "{task}: every missed slot is planned late: {t:?}");
        }
    }
    cleanups_deleted_what_was_past_their_age(&data_dir.join("simulate.db"), &tallies).await;
    // Each channel is exercised somewhere, so the per-channel checks above mean something.
    let all = expected.values().fold(Sent::default(), |a, s| Sent {
        emails: a.emails + s.emails,
        sms: a.sms + s.sms,
        pushes: a.pushes + s.pushes,
    });
    assert!(all.sms > 0 && all.pushes > 0, "{expected:?}");
    dunning_went_by_its_schedule(&data_dir.join("simulate.db")).await;
    // The analytics send nothing: what they fired, and what they left for the app.
    for (task, fired) in [("leaderboards", 31 * 8 - 1), ("trending", 30), ("user-stats", 30)] {
        let t = tally(task);
        let counts = (t.fired, t.missed, t.caught_up, t.skipped, t.retries);
        assert_eq!(counts, (fired, 1, 1, 0, 0), "{task}: one slot in the downtime, caught up alone: {t:?}");
    }
    analytics_are_current(&data_dir.join("simulate.db")).await;
    std::fs::remove_dir_all(data_dir).ok();
}

/// Each cleanup's deletions over the month are the seeded rows past its age at its last run, computed here
/// from the seed alone (the ages the README gives: carts and sessions 30 days, audit logs 90, temporary uploads
/// 24 hours, tokens none); nothing past that age is left, nothing younger went, nothing was kept.
async fn cleanups_deleted_what_was_past_their_age(db: &std::path::Path, tallies: &[TaskTally]) {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let users: Vec<i64> = sqlx::query_scalar("SELECT id FROM users ORDER BY id").fetch_all(&mut conn).await.unwrap();
    let from: NaiveDate = START[..10].parse().unwrap();
    let to = utc(END).date_naive() - Duration::days(1);
    let seeded = jobs::seed::maintenance_rows(&users, from, to, 42);
    let ats = |table: &str| -> Vec<DateTime<Utc>> {
        match table {
            "carts" => seeded.carts.iter().map(|c| c.updated_at).collect(),
            _ => {
                let swept = match table {
                    "password_reset_tokens" => Swept::PasswordResetTokens,
                    "email_verification_tokens" => Swept::EmailVerificationTokens,
                    "otp_codes" => Swept::OtpCodes,
                    "sessions" => Swept::Sessions,
                    "audit_logs" => Swept::AuditLogs,
                    _ => Swept::TempUploads,
                };
                seeded.rows.iter().find(|(t, _)| *t == swept).unwrap().1.iter().map(|r| r.at).collect()
            }
        }
    };
    // Each task's last run in the month (the day of its slot, 00:00 UTC), its age, and its tables.
    let day = |d: &str| utc(&format!("{d}T00:00:00Z"));
    // (task, its last run's day, its age, its tables and their age columns)
    type Case<'a> = (&'a str, DateTime<Utc>, Duration, &'a [(&'a str, &'a str)]);
    let cases: [Case; 5] = [
        ("cart-cleanup", day("2026-11-14"), Duration::days(30), &[("carts", "updated_at")]),
        (
            "token-cleanup",
            day("2026-11-14"),
            Duration::zero(),
            &[
                ("password_reset_tokens", "expires_at"),
                ("email_verification_tokens", "expires_at"),
                ("otp_codes", "expires_at"),
            ],
        ),
        ("audit-log-retention", day("2026-11-08"), Duration::days(90), &[("audit_logs", "created_at")]),
        ("session-cleanup", day("2026-11-14"), Duration::days(30), &[("sessions", "last_seen_at")]),
        ("temp-data-cleanup", day("2026-11-14"), Duration::hours(24), &[("temp_uploads", "created_at")]),
    ];
    for (task, last_run, age, tables) in cases {
        let cutoff = last_run - age;
        let stamp = cutoff.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let mut due = 0;
        for (table, column) in tables {
            let seeded = ats(table);
            let past: u64 = seeded.iter().filter(|at| **at < cutoff).count() as u64;
            due += past;
            let old: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE {column} < ?1"))
                .bind(&stamp)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            let left: i64 =
                sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut conn).await.unwrap();
            assert_eq!((old, left as u64), (0, seeded.len() as u64 - past), "{task}: {table}");
        }
        let t = tallies.iter().find(|t| t.task == task).unwrap();
        assert!(due > 0, "{task}: the seed has rows for it to delete");
        assert_eq!((t.deleted, t.kept), (due, 0), "{task}: {t:?}");
    }
}

/// After the last slots: every board is its last slot's, with at most the version it replaced beside it; the week's
/// workouts board ranks what the workouts table holds for that week (competition ranking, ties by user id); each
/// challenge has the standings of the last slot it was active in; every user's stats are less than a week old.
async fn analytics_are_current(db: &std::path::Path) {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let current: HashMap<String, String> = sqlx::query_as("SELECT board, slot FROM boards_current")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let last = "2026-11-14T21:00:00.000000Z";
    for board in ["week-volume", "week-workouts", "streak"] {
        assert_eq!(current[board], last, "{board}");
    }
    for board in ["trending-workouts", "trending-exercises"] {
        assert_eq!(current[board], "2026-11-14T00:00:00.000000Z", "{board}: the day's run");
    }
    let most: i64 = sqlx::query_scalar("SELECT max(n) FROM (SELECT count(*) AS n FROM board_versions GROUP BY board)")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(most, 2, "the current version and the one it replaced");

    // Saturday 14 November's week: Monday 9 to Sunday 15, as written by the last slot.
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for (user, day, written) in workouts(&mut conn).await {
        if ("2026-11-09".parse().unwrap()..="2026-11-15".parse().unwrap()).contains(&day) && written <= utc(last) {
            *counts.entry(user).or_default() += 1;
        }
    }
    let mut week: Vec<(i64, i64)> = counts.into_iter().collect();
    week.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let expected: Vec<(i64, i64, i64, f64)> = week
        .iter()
        .enumerate()
        .map(|(i, &(user, n))| {
            let rank = week.iter().position(|w| w.1 == n).unwrap() as i64 + 1;
            (i as i64 + 1, rank, user, n as f64)
        })
        .collect();
    let board: Vec<(i64, i64, i64, f64)> = sqlx::query_as(
        "SELECT e.position, e.rank, e.subject_id, e.score FROM boards_current c JOIN board_entries e ON e.version = c.version
         WHERE c.board = 'week-workouts' ORDER BY e.position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(expected.len() > 50 && expected.iter().any(|e| e.1 < e.0), "ties happen: {expected:?}");
    assert_eq!(board, expected);

    let challenges: Vec<(i64, NaiveDate, NaiveDate, i64)> = sqlx::query_as(
        "SELECT c.id, c.starts_on, c.ends_on, (SELECT count(*) FROM challenge_participants p WHERE p.challenge_id = c.id)
         FROM challenges c",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let (first, last_day) = (utc(START).date_naive(), utc(END).date_naive() - Duration::days(1));
    for (id, starts, ends, participants) in challenges {
        let standings: Option<(String, i64)> = sqlx::query_as(
            "SELECT c.slot, v.entries FROM boards_current c JOIN board_versions v ON v.id = c.version WHERE c.board = ?",
        )
        .bind(format!("challenge-{id}"))
        .fetch_optional(&mut conn)
        .await
        .unwrap();
        let active_until = ends.min(last_day);
        if starts > ends || active_until < first || starts > last_day {
            assert_eq!(standings, None, "challenge {id} was never active");
        } else {
            let slot = format!("{active_until}T21:00:00.000000Z");
            assert_eq!(standings, Some((slot, participants)), "challenge {id}: its last active slot's, everyone on it");
        }
    }

    let (users, cached, oldest): (i64, i64, NaiveDate) =
        sqlx::query_as("SELECT (SELECT count(*) FROM users), count(*), min(window_end) FROM user_stats")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(cached, users, "every user has stats");
    assert!(oldest > last_day - Duration::days(7), "none a week old: {oldest}");
}

/// The seeded cards scripted to decline: every one of an order's charges, on the days of the dunning schedule
/// (first decline, then 1, 3 and 5 days after it), ends with the subscription paused; a card declining twice
/// is charged at the third attempt, three days after the first.
async fn dunning_went_by_its_schedule(db: &std::path::Path) {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    for (method, statuses, days, subscription) in [
        ("pm_decline_always", vec!["declined"; 4], vec![0, 1, 3, 5], "paused"),
        ("pm_decline_2_times", vec!["declined", "declined", "succeeded"], vec![0, 1, 3], "active"),
    ] {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT p.status, p.created_at, s.status FROM payments p
             JOIN orders o ON o.id = p.order_id JOIN subscriptions s ON s.id = o.subscription_id
             WHERE s.payment_method = ?1 AND o.id = (SELECT min(o2.id) FROM orders o2 WHERE o2.subscription_id = s.id)
             ORDER BY p.attempt",
        )
        .bind(method)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), statuses, "{method}");
        let day = |stamp: &str| stamp[..10].parse::<NaiveDate>().unwrap();
        let first = day(&rows[0].1);
        let after: Vec<i64> = rows.iter().map(|r| (day(&r.1) - first).num_days()).collect();
        assert_eq!(after, days, "{method}: days after the first decline");
        assert_eq!(rows[0].2, subscription, "{method}");
    }
}
