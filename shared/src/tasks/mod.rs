//! The scheduled tasks, one module each, and the registry that builds a task from its name.

use std::sync::Arc;

use crate::{
    channels::Channels,
    ports::{
        ActivityStore, Boards, ChallengeNotices, Challenges, FoodLog, FoodRecognizer, History, InactivityReminders,
        MonthlyReports, OrderEvents, OrderNotices, Payments, Photos, Renewals, ShopStore, StatsCache, Sweeper,
        WeeklyReports, ZoneMoves,
    },
    runtime::Task,
    schedule::Schedule,
    Error, Result,
};

// FUNCTIONS and SCHEDULES, read from template.yaml by build.rs.
include!(concat!(env!("OUT_DIR"), "/schedules.rs"));

pub mod fitness;
pub mod local_time;
pub mod maintenance;
pub mod messages;
pub mod shop;

use fitness::{
    challenge_notifications, daily_summary, food_recognition, inactivity_reminders, leaderboards, monthly_report,
    trending, user_stats, weekly_report,
};
use maintenance::{
    cleanup::{self, Ages, Cleanup},
    job_history_retention,
};
use shop::{order_notifications, renewal_reminders, subscription_processing};

/// Every task, by name; each has a function crate of the same name and a schedule in template.yaml.
pub const NAMES: &[&str] = &[
    daily_summary::NAME,
    weekly_report::NAME,
    monthly_report::NAME,
    inactivity_reminders::NAME,
    challenge_notifications::NAME,
    subscription_processing::NAME,
    renewal_reminders::NAME,
    order_notifications::NAME,
    job_history_retention::NAME,
    cleanup::CART_CLEANUP,
    cleanup::TOKEN_CLEANUP,
    cleanup::AUDIT_LOG_RETENTION,
    cleanup::SESSION_CLEANUP,
    cleanup::TEMP_DATA_CLEANUP,
    leaderboards::NAME,
    trending::NAME,
    user_stats::NAME,
    food_recognition::NAME,
];

/// The tasks that send email (and, some of them, SMS and push): the others have no SES permission in
/// template.yaml (its `SendsEmail` flags; tests/tests/template.rs checks they agree), so their functions read no
/// send quota.
pub const SENDERS: &[&str] = &[
    daily_summary::NAME,
    weekly_report::NAME,
    monthly_report::NAME,
    inactivity_reminders::NAME,
    challenge_notifications::NAME,
    renewal_reminders::NAME,
    order_notifications::NAME,
];

/// The tasks started by events rather than a schedule: template.yaml routes their events to their queue.
pub const EVENT_DRIVEN: &[&str] = &[order_notifications::NAME, food_recognition::NAME];

/// What the tasks need from the world.
#[derive(Clone)]
pub struct Deps {
    pub activity: Arc<dyn ActivityStore>,
    pub moves: Arc<dyn ZoneMoves>,
    pub weekly: Arc<dyn WeeklyReports>,
    pub monthly: Arc<dyn MonthlyReports>,
    pub inactivity: Arc<dyn InactivityReminders>,
    pub challenges: Arc<dyn ChallengeNotices>,
    pub renewals: Arc<dyn Renewals>,
    pub channels: Channels,
    pub letterhead: messages::Letterhead,
    /// Days without a workout before an inactivity reminder.
    pub inactivity_days: u32,
    pub shop: Arc<dyn ShopStore>,
    /// The payment gateway; the shop's processing refuses to run without one.
    pub payments: Option<Arc<dyn Payments>>,
    /// Where the shop's order events go: the bus, or the order notifications' queue.
    pub order_events: Option<Arc<dyn OrderEvents>>,
    pub order_notices: Arc<dyn OrderNotices>,
    /// The shop's web address, for the links to a customer's subscription; none locally.
    pub shop_url: Option<String>,
    pub history: Arc<dyn History>,
    /// Days of job history kept (`JOB_HISTORY_RETENTION_DAYS`), checked when the task is built.
    pub history_days: u32,
    /// Where the cleanup tasks delete the app's old rows.
    pub sweeper: Arc<dyn Sweeper>,
    /// How long the app's rows are kept before the cleanup tasks delete them.
    pub cleanup_ages: Ages,
    /// The versioned boards the leaderboards and trending build.
    pub boards: Arc<dyn Boards>,
    pub challenge_dates: Arc<dyn Challenges>,
    pub stats: Arc<dyn StatsCache>,
    /// Where the app uploads meal photos.
    pub photos: Option<Arc<dyn Photos>>,
    /// The vision model food recognition asks; it refuses to run without one.
    pub recognizer: Option<Arc<dyn FoodRecognizer>>,
    pub food_log: Arc<dyn FoodLog>,
}

/// The task of that name, or an error that says which tasks there are.
pub fn known(name: &str) -> Result<&'static str> {
    NAMES
        .iter()
        .copied()
        .find(|known| *known == name)
        .ok_or_else(|| Error::permanent(format!("unknown task {name:?}; the tasks are: {}", NAMES.join(", "))))
}

/// Builds one task over the adapters.
pub type Builder = fn(&Deps) -> Result<Arc<dyn Task>>;

/// The named task's builder, or an error that says which tasks there are.
pub fn builder(name: &str) -> Result<Builder> {
    Ok(match known(name)? {
        daily_summary::NAME => builders::daily_summary,
        weekly_report::NAME => builders::weekly_report,
        monthly_report::NAME => builders::monthly_report,
        inactivity_reminders::NAME => builders::inactivity_reminders,
        challenge_notifications::NAME => builders::challenge_notifications,
        subscription_processing::NAME => builders::subscription_processing,
        renewal_reminders::NAME => builders::renewal_reminders,
        order_notifications::NAME => builders::order_notifications,
        leaderboards::NAME => builders::leaderboards,
        trending::NAME => builders::trending,
        food_recognition::NAME => builders::food_recognition,
        user_stats::NAME => builders::user_stats,
        job_history_retention::NAME => builders::job_history_retention,
        cleanup::CART_CLEANUP => builders::cart_cleanup,
        cleanup::TOKEN_CLEANUP => builders::token_cleanup,
        cleanup::AUDIT_LOG_RETENTION => builders::audit_log_retention,
        cleanup::SESSION_CLEANUP => builders::session_cleanup,
        cleanup::TEMP_DATA_CLEANUP => builders::temp_data_cleanup,
        other => unreachable!("{other} is in NAMES but has no builder"),
    })
}

/// Builds the named task, or says which tasks there are (`jobs` and the tests).
pub fn build(name: &str, deps: &Deps) -> Result<Arc<dyn Task>> {
    builder(name)?(deps)
}

/// Each task's builder, by the task's module name. A function's main hands its own to the runtime
/// (`serve(daily_summary::NAME, builders::daily_summary)`), so its binary links no other task.
pub mod builders {
    use super::*;

    pub fn daily_summary(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(daily_summary::DailySummary {
            store: deps.activity.clone(),
            moves: deps.moves.clone(),
            channels: deps.channels.clone(),
            letterhead: deps.letterhead.clone(),
            chunk_size: 500,
        }))
    }

    pub fn weekly_report(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(weekly_report::WeeklyReport {
            activity: deps.activity.clone(),
            weeks: deps.weekly.clone(),
            moves: deps.moves.clone(),
            channels: deps.channels.clone(),
            letterhead: deps.letterhead.clone(),
            chunk_size: 500,
        }))
    }

    pub fn monthly_report(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(monthly_report::MonthlyReport {
            activity: deps.activity.clone(),
            months: deps.monthly.clone(),
            moves: deps.moves.clone(),
            channels: deps.channels.clone(),
            letterhead: deps.letterhead.clone(),
            chunk_size: 500,
        }))
    }

    pub fn inactivity_reminders(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(inactivity_reminders::InactivityReminders {
            store: deps.activity.clone(),
            inactive: deps.inactivity.clone(),
            channels: deps.channels.clone(),
            letterhead: deps.letterhead.clone(),
            days: deps.inactivity_days,
            chunk_size: 500,
        }))
    }

    pub fn challenge_notifications(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(challenge_notifications::ChallengeNotifications {
            store: deps.activity.clone(),
            challenges: deps.challenges.clone(),
            channels: deps.channels.clone(),
            letterhead: deps.letterhead.clone(),
            chunk_size: 500,
        }))
    }

    pub fn subscription_processing(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(subscription_processing::SubscriptionProcessing {
            shop: deps.shop.clone(),
            payments: deps.payments.clone().ok_or_else(|| {
                Error::permanent(format!(
                    "{} charges customers: it needs a payment gateway (PAYMENT_GATEWAY; `fake` is the embedded one)",
                    subscription_processing::NAME
                ))
            })?,
            events: deps.order_events.clone().ok_or_else(|| {
                Error::permanent(format!(
                    "{} publishes order events: it needs the event bus",
                    subscription_processing::NAME
                ))
            })?,
            chunk_size: 200,
            concurrency: 16,
        }))
    }

    pub fn renewal_reminders(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(renewal_reminders::RenewalReminders {
            renewals: deps.renewals.clone(),
            channels: deps.channels.clone(),
            letterhead: deps.letterhead.clone(),
            shop_url: deps.shop_url.clone(),
            chunk_size: 500,
        }))
    }

    pub fn order_notifications(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(order_notifications::OrderNotifications {
            orders: deps.order_notices.clone(),
            channels: deps.channels.clone(),
            letterhead: deps.letterhead.clone(),
        }))
    }

    pub fn leaderboards(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(leaderboards::Leaderboards {
            boards: deps.boards.clone(),
            challenges: deps.challenge_dates.clone(),
        }))
    }

    pub fn trending(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(trending::Trending { boards: deps.boards.clone() }))
    }

    pub fn food_recognition(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(food_recognition::FoodRecognition {
            photos: deps.photos.clone().ok_or_else(|| {
                Error::permanent(format!(
                    "{} reads the uploaded photos: set UPLOADS_BUCKET (or UPLOADS_DIR locally)",
                    food_recognition::NAME
                ))
            })?,
            recognizer: deps.recognizer.clone().ok_or_else(|| {
                Error::permanent(format!(
                    "{} asks a vision model: set FOOD_MODEL_URL (`samples` is the embedded one)",
                    food_recognition::NAME
                ))
            })?,
            log: deps.food_log.clone(),
        }))
    }

    pub fn user_stats(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(user_stats::UserStatsTask { cache: deps.stats.clone(), chunk_size: 2_000 }))
    }

    pub fn job_history_retention(deps: &Deps) -> Result<Arc<dyn Task>> {
        Ok(Arc::new(job_history_retention::JobHistoryRetention {
            history: deps.history.clone(),
            retention: job_history_retention::Retention::days(i64::from(deps.history_days))?,
            batch_rows: job_history_retention::BATCH_ROWS,
        }))
    }

    pub fn cart_cleanup(deps: &Deps) -> Result<Arc<dyn Task>> {
        cleanup_task(cleanup::CART_CLEANUP, deps)
    }

    pub fn token_cleanup(deps: &Deps) -> Result<Arc<dyn Task>> {
        cleanup_task(cleanup::TOKEN_CLEANUP, deps)
    }

    pub fn audit_log_retention(deps: &Deps) -> Result<Arc<dyn Task>> {
        cleanup_task(cleanup::AUDIT_LOG_RETENTION, deps)
    }

    pub fn session_cleanup(deps: &Deps) -> Result<Arc<dyn Task>> {
        cleanup_task(cleanup::SESSION_CLEANUP, deps)
    }

    pub fn temp_data_cleanup(deps: &Deps) -> Result<Arc<dyn Task>> {
        cleanup_task(cleanup::TEMP_DATA_CLEANUP, deps)
    }

    fn cleanup_task(name: &'static str, deps: &Deps) -> Result<Arc<dyn Task>> {
        let cleanup = Cleanup::new(name, deps.sweeper.clone(), &deps.cleanup_ages);
        Ok(Arc::new(cleanup.unwrap_or_else(|| unreachable!("{name} is a cleanup without sweeps"))))
    }
}

/// How far apart two slots of the named task can be that claim the same delivery key; `None` when a key may
/// be claimed again at any time, so that job-history retention never deletes the task's keys (a task not
/// listed here, or without delivery keys, is `None`: the safe answer).
pub fn keys_reused_within(name: &str) -> Option<chrono::Duration> {
    use chrono::Duration;
    match name {
        // The user's local day: its 06:00 reached in one zone, then planned again with the next day's wherever the
        // user moved to since (`tasks::local_time`): a day, plus the 26 hours between the zones' 06:00s, plus
        // an hour's slot.
        daily_summary::NAME => Some(Duration::days(3)),
        // The user's ISO week, sent on its Monday, and planned again with the next week's if the user moved: a
        // week, plus the zones' 26 hours and a slot.
        weekly_report::NAME => Some(Duration::days(9)),
        // The user's month, sent on the 1st: the same, with a month of 31 days.
        monthly_report::NAME => Some(Duration::days(33)),
        // (subscription, delivery date): reminded only by the slot of the day before that date.
        renewal_reminders::NAME => Some(Duration::days(2)),
        // One per stretch without a workout, however long it lasts; one per challenge and edge, whatever dates
        // the challenge is moved to; one per order and event, which an operator may publish again: never.
        inactivity_reminders::NAME | challenge_notifications::NAME | order_notifications::NAME => None,
        _ => None,
    }
}

/// The named task's schedule, as template.yaml deploys it; none for a task started by events.
pub fn schedule(name: &str) -> Result<Option<Schedule>> {
    if EVENT_DRIVEN.contains(&name) {
        return Ok(None);
    }
    scheduled(name).map(Some)
}

/// A scheduled task's schedule, as template.yaml deploys it.
fn scheduled(name: &str) -> Result<Schedule> {
    let mut found = SCHEDULES.iter().filter(|(task, ..)| *task == name);
    match (found.next(), found.next()) {
        (Some((_, expression, zone)), None) => {
            Schedule::parse(expression, zone).map_err(|e| Error::permanent(format!("template.yaml, {name}: {e}")))
        }
        (None, _) => Err(Error::permanent(format!("template.yaml has no ScheduleV2 event for the task {name:?}"))),
        (Some(_), Some(_)) => Err(Error::permanent(format!("template.yaml has several schedules for {name:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheduled_task_has_one_valid_schedule_in_the_template_and_no_other_task_has_one() {
        for name in NAMES {
            assert_eq!(schedule(name).unwrap().is_none(), EVENT_DRIVEN.contains(name), "{name}");
        }
        for name in EVENT_DRIVEN {
            assert!(
                SCHEDULES.iter().all(|(task, ..)| task != name),
                "template.yaml schedules {name}, started by events"
            );
        }
    }

    #[test]
    fn every_function_in_the_template_is_a_task() {
        for function in FUNCTIONS {
            assert!(NAMES.contains(function), "template.yaml deploys {function:?}, which no task is named");
        }
        for (task, ..) in SCHEDULES {
            assert!(NAMES.contains(task), "template.yaml schedules {task:?}, which no task is named");
        }
    }

    /// The reports' schedules fire only on some UTC days: each must still fire in the hour that every zone, from
    /// UTC+14 to UTC-12, reaches its local send time, across month ends (leap February too) and DST changes.
    #[test]
    fn the_report_schedules_fire_in_every_hour_a_zone_reaches_its_send_time() {
        use crate::time::{wall_clock_instant, Slot};
        use chrono::{Duration, NaiveDate};
        let zones = ["Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Chatham", "America/St_Johns", "Europe/London"];
        let cases = [
            (weekly_report::NAME, weekly_report::send_at(), ["2026-03-02", "2026-03-30", "2026-10-26", "2026-11-30"]),
            (monthly_report::NAME, monthly_report::send_at(), ["2026-03-01", "2028-03-01", "2026-05-01", "2027-01-01"]),
        ];
        for (name, at, dates) in cases {
            let schedule = scheduled(name).unwrap();
            for zone in zones {
                for date in dates {
                    let instant = wall_clock_instant(zone.parse().unwrap(), date.parse::<NaiveDate>().unwrap(), at);
                    // The slot whose hour (after, until] holds the instant.
                    let slot =
                        Slot::new(instant - Duration::seconds(1), Duration::hours(1)).time() + Duration::hours(1);
                    assert_eq!(
                        schedule.next_after(slot - Duration::seconds(1)),
                        Some(slot),
                        "{name} does not fire at {slot}, when {zone} reaches {at} on {date}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_task_missing_from_the_template_is_a_clear_error() {
        let e = schedule("weekly-report-that-does-not-exist").unwrap_err();
        assert!(e.to_string().contains("no ScheduleV2 event"), "{e}");
    }
}
