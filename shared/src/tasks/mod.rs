//! The scheduled tasks, one module each, and the registry that builds a task from its name.

use std::sync::Arc;

use crate::{
    channels::Channels,
    ports::{ActivityStore, ChallengeNotices, InactivityReminders, MonthlyReports, Progress, WeeklyReports},
    runtime::Task,
    schedule::Schedule,
    Error, Result,
};

// FUNCTIONS and SCHEDULES, read from template.yaml by build.rs.
include!(concat!(env!("OUT_DIR"), "/schedules.rs"));

pub mod fitness;
pub mod local_time;
pub mod messages;

use fitness::{challenge_notifications, daily_summary, inactivity_reminders};

/// Every task, by name; each has a function crate of the same name and a schedule in template.yaml.
pub const NAMES: &[&str] = &[daily_summary::NAME, inactivity_reminders::NAME, challenge_notifications::NAME];

/// What the tasks need from the world.
#[derive(Clone)]
pub struct Deps {
    pub activity: Arc<dyn ActivityStore>,
    pub progress: Arc<dyn Progress>,
    pub weekly: Arc<dyn WeeklyReports>,
    pub monthly: Arc<dyn MonthlyReports>,
    pub inactivity: Arc<dyn InactivityReminders>,
    pub challenges: Arc<dyn ChallengeNotices>,
    pub channels: Channels,
    pub letterhead: messages::Letterhead,
    /// Days without a workout before an inactivity reminder.
    pub inactivity_days: u32,
}

/// The task of that name, or an error that says which tasks there are.
pub fn known(name: &str) -> Result<&'static str> {
    NAMES
        .iter()
        .copied()
        .find(|known| *known == name)
        .ok_or_else(|| Error::permanent(format!("unknown task {name:?}; the tasks are: {}", NAMES.join(", "))))
}

/// Builds the named task, or says which tasks there are.
pub fn build(name: &str, deps: &Deps) -> Result<Arc<dyn Task>> {
    match known(name)? {
        daily_summary::NAME => Ok(Arc::new(daily_summary::DailySummary {
            store: deps.activity.clone(),
            progress: deps.progress.clone(),
            channels: deps.channels.clone(),
            letterhead: deps.letterhead.clone(),
            chunk_size: 500,
        })),
        inactivity_reminders::NAME => Ok(Arc::new(inactivity_reminders::InactivityReminders {
            store: deps.activity.clone(),
            inactive: deps.inactivity.clone(),
            channels: deps.channels.clone(),
            letterhead: deps.letterhead.clone(),
            days: deps.inactivity_days,
            chunk_size: 500,
        })),
        challenge_notifications::NAME => Ok(Arc::new(challenge_notifications::ChallengeNotifications {
            store: deps.activity.clone(),
            challenges: deps.challenges.clone(),
            channels: deps.channels.clone(),
            letterhead: deps.letterhead.clone(),
            chunk_size: 500,
        })),
        other => unreachable!("{other} is in NAMES but not built"),
    }
}

/// The named task's schedule, as template.yaml deploys it.
pub fn schedule(name: &str) -> Result<Schedule> {
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
    fn every_task_has_one_valid_schedule_in_the_template() {
        for name in NAMES {
            schedule(name).unwrap();
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

    #[test]
    fn a_task_missing_from_the_template_is_a_clear_error() {
        let e = schedule("weekly-report-that-does-not-exist").unwrap_err();
        assert!(e.to_string().contains("no ScheduleV2 event"), "{e}");
    }
}
