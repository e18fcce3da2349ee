//! `jobs schedules --deployed`: template.yaml's schedules against what EventBridge Scheduler holds for the stack
//! (ListSchedules, then GetSchedule of each), so a schedule changed by hand in the console, deleted, or left
//! behind by an old deploy shows before it fires wrong. The deployed counterpart of a task scheduler's "sync
//! tasks" command: it changes nothing, it reports.
//!
//! A schedule is the stack's when its name starts with the stack's name (CloudFormation names what SAM's
//! `ScheduleV2` events make `<stack>-<logical id>-<suffix>`); it is a task's when its target's input names the
//! task, as every schedule in template.yaml does (`{"task": …, "scheduledTime": …}`).

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_scheduler::Client;
use serde::Serialize;
use shared::tasks;

/// A schedule as Scheduler holds it: what the comparison reads of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deployed {
    pub name: String,
    /// The task its target's input names, if any.
    pub task: Option<String>,
    pub expression: String,
    pub zone: String,
    pub enabled: bool,
    /// `FlexibleTimeWindow` is OFF: it fires on the minute, as the slots assume.
    pub on_time: bool,
}

/// One way the deployed schedules differ from template.yaml's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "drift", rename_all = "snake_case")]
pub enum Drift {
    /// A task template.yaml schedules has no schedule deployed: its slots never fire.
    Missing { task: String, expression: String, zone: String },
    /// A deployed schedule of the stack that template.yaml does not have (a removed task, a copy made by hand):
    /// it fires a task, or nothing, that nobody expects.
    Extra { name: String, task: Option<String> },
    /// A task's schedule deployed otherwise than template.yaml says.
    Different { task: String, name: String, field: &'static str, template: String, deployed: String },
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { task, expression, zone } => {
                write!(
                    f,
                    "missing    {task}: template.yaml has {expression} ({zone}); Scheduler has no schedule for it"
                )
            }
            Self::Extra { name, task: Some(task) } => {
                write!(f, "extra      {name}: fires {task}, which template.yaml does not schedule (or schedules once)")
            }
            Self::Extra { name, task: None } => write!(f, "extra      {name}: its input names no task"),
            Self::Different { task, name, field, template, deployed } => {
                write!(f, "different  {task} ({name}): {field} is {deployed}, template.yaml says {template}")
            }
        }
    }
}

/// Every way `deployed` differs from the schedules template.yaml gives the tasks, missing ones first.
pub fn compare(deployed: &[Deployed]) -> anyhow::Result<Vec<Drift>> {
    let mut by_task: BTreeMap<&str, Vec<&Deployed>> = BTreeMap::new();
    let mut drifts = vec![];
    for schedule in deployed {
        match schedule.task.as_deref().filter(|task| tasks::NAMES.contains(task)) {
            Some(task) => by_task.entry(task).or_default().push(schedule),
            None => drifts.push(Drift::Extra { name: schedule.name.clone(), task: schedule.task.clone() }),
        }
    }
    let mut missing = vec![];
    for task in tasks::NAMES {
        let Some(schedule) = tasks::schedule(task)? else { continue };
        let (expression, zone) = (schedule.expression().to_owned(), schedule.zone().name().to_owned());
        let Some((first, copies)) = by_task.get(task).and_then(|found| found.split_first()) else {
            missing.push(Drift::Missing { task: task.to_string(), expression, zone });
            continue;
        };
        let mut differ = |field, template: &str, deployed: &str| {
            if template != deployed {
                drifts.push(Drift::Different {
                    task: task.to_string(),
                    name: first.name.clone(),
                    field,
                    template: template.to_owned(),
                    deployed: deployed.to_owned(),
                });
            }
        };
        differ("the expression", &expression, &first.expression);
        differ("the time zone", &zone, &first.zone);
        differ("the state", "ENABLED", if first.enabled { "ENABLED" } else { "DISABLED" });
        differ("the flexible time window", "OFF", if first.on_time { "OFF" } else { "FLEXIBLE" });
        drifts.extend(copies.iter().map(|copy| Drift::Extra { name: copy.name.clone(), task: copy.task.clone() }));
    }
    missing.extend(drifts);
    Ok(missing)
}

/// The stack's schedules in `group`, as Scheduler holds them now.
pub async fn deployed(client: &Client, stack: &str, group: &str) -> anyhow::Result<Vec<Deployed>> {
    let mut names = vec![];
    let mut pages = client.list_schedules().group_name(group).name_prefix(stack).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing the schedules of group {group} (scheduler:ListSchedules)"))?;
        names.extend(page.schedules().iter().filter_map(|s| s.name().map(str::to_owned)));
    }
    let mut schedules = vec![];
    for name in names {
        let got = client
            .get_schedule()
            .group_name(group)
            .name(&name)
            .send()
            .await
            .with_context(|| format!("reading the schedule {name} (scheduler:GetSchedule)"))?;
        let input = got.target().and_then(|target| target.input());
        let task = input
            .and_then(|input| serde_json::from_str::<serde_json::Value>(input).ok())
            .and_then(|input| input["task"].as_str().map(str::to_owned));
        schedules.push(Deployed {
            name,
            task,
            expression: got.schedule_expression().unwrap_or_default().to_owned(),
            zone: got.schedule_expression_timezone().unwrap_or("UTC").to_owned(),
            enabled: got.state().is_none_or(|state| state.as_str() == "ENABLED"),
            on_time: got.flexible_time_window().is_none_or(|window| window.mode().as_str() == "OFF"),
        });
    }
    Ok(schedules)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every task's schedule as template.yaml deploys it.
    fn as_deployed() -> Vec<Deployed> {
        tasks::NAMES
            .iter()
            .filter_map(|task| tasks::schedule(task).unwrap().map(|s| (task, s)))
            .map(|(task, schedule)| Deployed {
                name: format!("jobs-{task}-Schedule-ABC"),
                task: Some(task.to_string()),
                expression: schedule.expression().to_owned(),
                zone: schedule.zone().name().to_owned(),
                enabled: true,
                on_time: true,
            })
            .collect()
    }

    #[test]
    fn schedules_as_the_template_says_are_no_drift() {
        assert_eq!(compare(&as_deployed()).unwrap(), vec![]);
    }

    #[test]
    fn a_missing_a_changed_a_disabled_and_a_left_over_schedule_are_each_drift() {
        let mut deployed = as_deployed();
        deployed.retain(|s| s.task.as_deref() != Some("weekly-report"));
        let daily = deployed.iter_mut().find(|s| s.task.as_deref() == Some("daily-summary")).unwrap();
        daily.expression = "cron(0 6 * * ? *)".into();
        daily.zone = "Europe/London".into();
        let cart = deployed.iter_mut().find(|s| s.task.as_deref() == Some("cart-cleanup")).unwrap();
        cart.enabled = false;
        let copy = Deployed { name: "jobs-copy".into(), ..deployed[0].clone() };
        deployed.push(copy);
        deployed.push(Deployed { name: "jobs-old".into(), task: Some("old-task".into()), ..deployed[0].clone() });
        let drifts: Vec<String> = compare(&deployed).unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(drifts.len(), 6, "{drifts:#?}");
        assert!(drifts[0].starts_with("missing    weekly-report: template.yaml has cron(0 * ? * SUN,MON *)"));
        let has = |needle: &str| drifts.iter().any(|d| d.contains(needle));
        assert!(has("extra      jobs-old: fires old-task"), "{drifts:#?}");
        assert!(has("daily-summary (jobs-daily-summary-Schedule-ABC): the expression is cron(0 6 * * ? *)"));
        assert!(has("daily-summary (jobs-daily-summary-Schedule-ABC): the time zone is Europe/London"));
        assert!(has("cart-cleanup (jobs-cart-cleanup-Schedule-ABC): the state is DISABLED"));
        assert!(has("extra      jobs-copy"), "{drifts:#?}");
    }
}
