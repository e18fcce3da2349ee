//! The demo's view of the analytics tasks: what each did per day, as job_runs counted it, and at the end the
//! boards and stats as the app would read them.

use std::collections::HashMap;

use anyhow::Result;
use infra::wiring::Backend;
use shared::{
    ports::{Board, BoardEntry},
    render,
    runtime::JobRuntime,
    tasks::fitness::{leaderboards, trending, user_stats},
    time::Slot,
};

use crate::simulate::SlotDone;

/// Entries shown per board.
const TOP: u32 = 3;

/// What an analytics task did in these fired slots, as job_runs counted it (boards built, users' stats
/// written); none for the other tasks.
pub async fn done(runtime: &JobRuntime, fired: &[&SlotDone]) -> Result<Option<String>> {
    let task = runtime.task.name();
    let what = match task {
        leaderboards::NAME | trending::NAME => "boards built",
        user_stats::NAME => "users' stats written",
        _ => return Ok(None),
    };
    let mut done = 0;
    for slot in fired {
        // A daily task's run is its day's: the slot as the runtime truncates it.
        let run = Slot::new(slot.time, runtime.task.granularity()).time();
        if let Some(run) = runtime.runs.run(task, run).await? {
            done += run.sent;
        }
    }
    Ok(Some(format!("{done} {what}")))
}

/// The top of every current board, and a line of the stats cache.
pub async fn print(backend: &Backend) -> Result<()> {
    let boards = backend.store.boards();
    let names = boards.board_names().await?;
    if names.is_empty() {
        return Ok(());
    }
    let mut read = vec![];
    for name in &names {
        if let Some(board) = boards.board(name, TOP).await? {
            read.push(board);
        }
    }
    let users: Vec<i64> = read
        .iter()
        .filter(|b| !b.name.starts_with("trending-"))
        .flat_map(|b| b.entries.iter().filter_map(|e| e.subject_id))
        .collect();
    let people: HashMap<i64, String> =
        backend.store.contacts().contacts(&users).await?.into_iter().map(|c| (c.user_id, c.name)).collect();
    let challenges = backend.store.challenges();
    println!("\nThe boards as the app reads them (top {TOP}; equal scores share a rank):");
    for board in &read {
        let title = match board.name.strip_prefix("challenge-").and_then(|id| id.parse().ok()) {
            Some(id) => match challenges.challenge(id).await? {
                Some(challenge) => format!("{} \"{}\"", board.name, challenge.title),
                None => board.name.clone(),
            },
            None => board.name.clone(),
        };
        println!(
            "  {title}: version {}, built for {}, {} ranked",
            board.version,
            board.slot.format("%Y-%m-%d %H:%M"),
            board.total
        );
        for entry in &board.entries {
            println!("    {:>2}. {}", entry.rank, line(board, entry, &people));
        }
    }
    print_stats(backend).await
}

/// One entry, in the words of its board.
fn line(board: &Board, entry: &BoardEntry, people: &HashMap<i64, String>) -> String {
    let who = || match entry.subject_id.and_then(|id| people.get(&id)) {
        Some(name) => name.clone(),
        None => format!("user {}", entry.subject_id.unwrap_or_default()),
    };
    let score = entry.score;
    match board.name.as_str() {
        "week-volume" => format!("{} {} kg", who(), render::thousands(score.round() as i64)),
        "week-workouts" => format!("{} {score:.0} workouts", who()),
        "streak" => format!("{} {score:.0} days in a row", who()),
        name if name.starts_with("trending-") => format!(
            "{} ×{score:.2} ({} in the last 7 days, {} the 7 before)",
            entry.label.as_deref().unwrap_or("?"),
            entry.recent.unwrap_or_default(),
            entry.previous.unwrap_or_default()
        ),
        _ => format!("{} {}", who(), render::duration(score.round() as i64)),
    }
}

/// How many users the stats cache holds, for which window, and the averages over them.
async fn print_stats(backend: &Backend) -> Result<()> {
    let activity = backend.store.activity();
    let zones = activity.time_zones().await?;
    let users = activity.users_in_zones(&zones, 0, u32::MAX).await?;
    let stats = backend.store.stats_cache().stats(&users).await?;
    let Some(latest) = stats.iter().map(|s| s.window_end).max() else { return Ok(()) };
    let n = stats.len() as f64;
    let mean = |f: &dyn Fn(&shared::ports::UserStats) -> f64| stats.iter().map(f).sum::<f64>() / n;
    let best = stats
        .iter()
        .flat_map(|s| s.records.iter().map(move |r| (s.user_id, r)))
        .max_by(|a, b| a.1.best_weight_kg.total_cmp(&b.1.best_weight_kg).then(b.0.cmp(&a.0)));
    println!(
        "\nuser-stats: {} of {} users cached, the latest for the 30 days to {latest}; on average {:.1} workouts ({:.1} a \
         week), {} and {} kg lifted, {:.1} personal records",
        stats.len(),
        users.len(),
        mean(&|s| s.workouts as f64),
        mean(&|s| s.workouts_per_week),
        render::duration(mean(&|s| s.minutes as f64).round() as i64),
        render::thousands(mean(&|s| s.volume_kg).round() as i64),
        mean(&|s| s.pr_sets as f64)
    );
    if let Some((user, record)) = best {
        println!(
            "  heaviest set in a cached window: {} kg × {} {} (user {user})",
            record.best_weight_kg, record.best_reps, record.exercise
        );
    }
    Ok(())
}
