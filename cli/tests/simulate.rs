//! `jobs simulate` over a month that crosses the end of summer time in Europe (25 October) and the United States
//! (1 November), with five hours of downtime: exact counts, and every active, opted-in user mailed once for each
//! active day whose next local 06:00 fell in the month — computed here from the data, independently of the task.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use jobs::simulate::{self, Sent, Spec, TaskTally};
use sqlx::{Connection, SqliteConnection};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The emails a correct daily summary sends: one per (opted-in user with a real zone, active local day) whose
/// following local 06:00 is covered by an hourly slot of the range.
async fn expected_emails(db: &std::path::Path, start: DateTime<Utc>, end: DateTime<Utc>) -> u64 {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let days: Vec<(String, bool, NaiveDate)> = sqlx::query_as(
        "SELECT DISTINCT u.time_zone, u.email_opt_in, w.local_date, u.id FROM workouts w JOIN users u ON u.id = w.user_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|(zone, opt_in, day, _id): (String, bool, NaiveDate, i64)| (zone, opt_in, day))
    .collect();
    let six = NaiveTime::from_hms_opt(6, 0, 0).unwrap();
    days.into_iter()
        .filter(|(zone, opt_in, day)| {
            let Ok(tz) = zone.parse::<Tz>() else { return false };
            let due = tz.from_local_datetime(&(*day + Duration::days(1)).and_time(six)).earliest().unwrap().to_utc();
            // The slot that plans it: the first hour boundary at or after its 06:00.
            let slot = DateTime::from_timestamp((due.timestamp() + 3599).div_euclid(3600) * 3600, 0).unwrap();
            *opt_in && start <= slot && slot < end
        })
        .count() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_across_dst_with_downtime_sends_each_summary_once() {
    let data_dir = std::env::temp_dir().join(format!("jobs-simulate-{}", std::process::id()));
    let spec = Spec {
        from: "2026-10-15".parse().unwrap(),
        to: "2026-11-14".parse().unwrap(),
        // Slots 01:00 to 05:00 on the night Europe leaves summer time never fire.
        downtime: Some((utc("2026-10-25T00:30:00Z"), utc("2026-10-25T05:30:00Z"))),
        data_dir: data_dir.clone(),
        users: 120,
    };
    let tallies = simulate::run(&spec, |_, _| {}).await.unwrap();
    let emails =
        expected_emails(&data_dir.join("simulate.db"), utc("2026-10-15T00:00:00Z"), utc("2026-11-15T00:00:00Z")).await;
    assert!(emails > 500, "the data set is big enough to mean something: {emails}");
    let summary = &tallies[0];
    assert_eq!(
        summary,
        &TaskTally {
            task: "daily-summary".into(),
            fired: 31 * 24 - 5,
            missed: 5,
            caught_up: 5,
            skipped: 0,
            messages: summary.messages,
            sent: Sent { emails, sms: 0, pushes: 0 },
            duplicates: 0,
            retries: 0,
            dead_lettered: 0,
        }
    );
    // Every slot that planned someone sent one message (120 users fit one chunk).
    assert!(summary.messages > 0 && summary.messages <= 31 * 24);
    std::fs::remove_dir_all(data_dir).ok();
}
