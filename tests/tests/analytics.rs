//! The analytics tasks (leaderboards, trending, user-stats) through the real runtime on both stores (SQLite,
//! PostgreSQL), with the queue embedded on virtual time: readers see one whole board version however often it is
//! rebuilt under them, ties share a rank, the numbers agree with the same numbers counted another way, a
//! redelivered message builds and counts nothing twice, and a malformed one goes to the dead-letter queue with
//! its reason.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use infra::wiring::Store;
use integration_tests::nudges::{Backend, Stack};
use shared::{
    ports::{Board, NewSet, NewUser, NewWorkout},
    runtime::{JobMessage, PlanStatus},
    tasks::fitness::{leaderboards, trending, user_stats},
};
use sqlx::{postgres::PgRow, sqlite::SqliteRow};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

async fn users(stack: &Stack, n: usize) -> Vec<i64> {
    let users: Vec<NewUser> = (0..n)
        .map(|i| NewUser {
            name: format!("Athlete {i}"),
            email: format!("athlete{i}@example.com"),
            phone: None,
            time_zone: "Europe/London".into(),
            email_opt_in: true,
        })
        .collect();
    stack.app.add_users(&users).await.unwrap()
}

/// A workout on `day`, started at noon UTC.
fn workout(user_id: i64, day: &str, name: &str, minutes: i64, sets: Vec<NewSet>) -> NewWorkout {
    NewWorkout {
        user_id,
        name: name.into(),
        started_at: utc(&format!("{day}T12:00:00Z")),
        local_date: date(day),
        duration_minutes: minutes,
        calories: minutes * 8,
        sets,
    }
}

fn set(exercise_id: i64, weight_kg: f64, reps: i64) -> NewSet {
    NewSet { exercise_id, weight_kg, reps, personal_record: false }
}

/// Rows of a query written in SQL both dialects read alike.
async fn rows<T>(store: &Store, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, PgRow> + for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin,
{
    match store {
        Store::Sqlite(s) => sqlx::query_as(sql).fetch_all(s.db()).await,
        Store::Postgres(s) => sqlx::query_as(sql).fetch_all(s.pool()).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn board(stack: &Stack, name: &str) -> Board {
    stack.store.boards().board(name, 1_000).await.unwrap().unwrap_or_else(|| panic!("no board {name}"))
}

/// (subject, position, rank, score) of each entry.
fn standings(board: &Board) -> Vec<(i64, i64, i64, f64)> {
    board.entries.iter().map(|e| (e.subject_id.unwrap(), e.position, e.rank, e.score)).collect()
}

/// Puts a message back on the task's queue, as SQS does when it delivers one again.
async fn deliver_again(stack: &Stack, task: &str, slot: &str, part: u64, payload: serde_json::Value) {
    let message = JobMessage { task: task.into(), slot: utc(slot), part, payload };
    stack.runtime.queue.send_batch(&[serde_json::to_string(&message).unwrap()]).await.unwrap();
}

/// How many versions of `board` are kept; and no entries are left of the versions deleted.
async fn versions_of(stack: &Stack, board: &str) -> i64 {
    let orphans =
        "SELECT count(*) FROM board_entries e WHERE NOT EXISTS (SELECT 1 FROM board_versions v WHERE v.id = e.version)";
    assert_eq!(rows::<(i64,)>(&stack.store, orphans).await[0].0, 0, "entries of deleted versions");
    let sql = format!("SELECT count(*) FROM board_versions WHERE board = '{board}'");
    rows::<(i64,)>(&stack.store, &sql).await[0].0
}

/// The week of Monday 16 November 2026 is rebuilt eight times, three hours apart, each time with one more workout
/// for each of 40 users, while two readers read the week's workouts board without pause. Every read is one
/// whole version: 40 entries, every score that version's round, all tied at rank 1 and shown by user id. After
/// the last switch only the current version and the one it replaced are kept.
async fn readers_see_the_old_board_or_the_new_one_never_a_mix(backend: Backend) {
    let stack = Stack::start(leaderboards::NAME, backend, utc("2026-11-18T00:00:05Z")).await;
    let ids = users(&stack, 40).await;
    let rounds = 8;
    let first_slot = utc("2026-11-18T00:00:00Z");
    let slot_of = |round: i64| first_slot + Duration::hours(3 * (round - 1));

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (boards, stop, ids) = (stack.store.boards(), stop.clone(), ids.clone());
            tokio::spawn(async move {
                let mut seen = BTreeSet::new();
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let Some(read) = boards.board("week-workouts", 1_000).await.unwrap() else {
                        tokio::task::yield_now().await;
                        continue;
                    };
                    reads += 1;
                    assert_eq!((read.total, read.entries.len()), (40, 40), "a whole version: {read:?}");
                    let round = read.entries[0].score;
                    assert!(read.entries.iter().all(|e| e.score == round && e.rank == 1), "one version: {read:?}");
                    let order: Vec<(i64, i64)> =
                        read.entries.iter().map(|e| (e.position, e.subject_id.unwrap())).collect();
                    let expected: Vec<(i64, i64)> = ids.iter().enumerate().map(|(i, id)| (i as i64 + 1, *id)).collect();
                    assert_eq!(order, expected, "ties shown by user id");
                    assert_eq!(read.slot, first_slot + Duration::hours(3 * (round as i64 - 1)), "its own slot's");
                    seen.insert(read.version);
                }
                (reads, seen)
            })
        })
        .collect();

    for round in 1..=rounds {
        // Any day of the slots' week (16–22 November): the eighth round's falls on the Monday again.
        let day = (date("2026-11-16") + Duration::days((round - 1) % 7)).to_string();
        let workouts: Vec<NewWorkout> = ids.iter().map(|&id| workout(id, &day, "Run", 30, vec![])).collect();
        stack.app.add_workouts(&workouts).await.unwrap();
        let slot = slot_of(round);
        stack.set_clock(&(slot + Duration::seconds(5)).to_rfc3339());
        stack.plan(&slot.to_rfc3339()).await;
        let work = stack.drain_totals().await;
        assert_eq!(work.sent, 3, "round {round}: the three global boards: {work:?}");
        // Give the readers a moment on this version.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut versions = BTreeSet::new();
    for reader in readers {
        let (reads, seen) = reader.await.unwrap();
        assert!(reads >= rounds as usize, "{reads} reads");
        versions.extend(seen);
    }
    assert!(versions.len() >= 4, "the readers read across rebuilds: {versions:?}");
    let last = board(&stack, "week-workouts").await;
    assert_eq!((last.slot, last.entries[0].score), (slot_of(rounds), rounds as f64));
    assert_eq!(versions_of(&stack, "week-workouts").await, 2, "the current version and the one it replaced");
}

/// Friday 20 November 2026 at 12:00 UTC. "Autumn push" (10–30 November) is active: its standings rank its
/// participants by minutes within its dates, equal minutes sharing a rank and the next rank skipping. "October"
/// is over and "Backwards" ends before it starts: neither is planned. The global boards rank the week's volume,
/// workouts and current streaks with the same ties. Redelivered, an older slot's, and a deleted challenge's
/// messages build nothing.
async fn ties_share_a_rank_and_the_next_rank_skips(backend: Backend) {
    let stack = Stack::start(leaderboards::NAME, backend, utc("2026-11-20T12:00:04Z")).await;
    let ids = users(&stack, 6).await;
    let (ana, bo, cy, di, ed, fe) = (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]);
    let squat = stack.app.add_exercises(&["Back squat".into()]).await.unwrap()[0];
    stack
        .app
        .add_workouts(&[
            // Ana: 60 minutes in two workouts, volume 100 × 5 + 50 × 10 = 1,000 kg; active the 18th to the 20th.
            workout(ana, "2026-11-18", "Legs", 30, vec![set(squat, 100.0, 5)]),
            workout(ana, "2026-11-19", "Run", 30, vec![set(squat, 50.0, 10)]),
            workout(ana, "2026-11-20", "Run", 0, vec![]),
            // Bo: 60 minutes at once, the same 1,000 kg in one set; a streak of one, today.
            workout(bo, "2026-11-20", "Legs", 60, vec![set(squat, 200.0, 5)]),
            // Cy: 30; last active yesterday, the day before too: a streak of two.
            workout(cy, "2026-11-18", "Run", 15, vec![]),
            workout(cy, "2026-11-19", "Run", 15, vec![]),
            // Di: trained only before the challenge (and the week): on its board with 0, on no other.
            workout(di, "2026-11-05", "Run", 100, vec![]),
            // Ed: 30, the day after Cy's last: the same streak as Cy's, broken the 17th.
            workout(ed, "2026-11-16", "Run", 10, vec![]),
            workout(ed, "2026-11-18", "Run", 10, vec![]),
            workout(ed, "2026-11-19", "Run", 10, vec![]),
            // Fe: no participant, trains the most.
            workout(fe, "2026-11-19", "Run", 500, vec![]),
        ])
        .await
        .unwrap();
    let writer = stack.store.writer();
    let active = writer.add_challenge("Autumn push", date("2026-11-10"), date("2026-11-30")).await.unwrap();
    let over = writer.add_challenge("October", date("2026-10-01"), date("2026-10-31")).await.unwrap();
    let backwards = writer.add_challenge("Backwards", date("2026-11-30"), date("2026-11-10")).await.unwrap();
    writer.join_challenge(active, &[ana, bo, cy, di, ed]).await.unwrap();
    writer.join_challenge(over, &[ana, fe]).await.unwrap();
    writer.join_challenge(backwards, &[ana]).await.unwrap();

    let slot = "2026-11-20T12:00:00Z";
    let plan = stack.plan(slot).await;
    assert_eq!((plan.messages, plan.planned), (2, 4), "the global boards and Autumn push's: {plan:?}");
    let work = stack.drain_totals().await;
    assert_eq!((work.sent, work.already_done, work.skipped_total()), (4, 0, 0), "{work:?}");

    let standings_board = board(&stack, &format!("challenge-{active}")).await;
    assert_eq!(
        standings(&standings_board),
        [(ana, 1, 1, 60.0), (bo, 2, 1, 60.0), (cy, 3, 3, 30.0), (ed, 4, 3, 30.0), (di, 5, 5, 0.0)]
    );
    for none in [over, backwards] {
        assert_eq!(stack.store.boards().board(&format!("challenge-{none}"), 10).await.unwrap(), None);
    }
    assert_eq!(standings(&board(&stack, "week-volume").await), [(ana, 1, 1, 1000.0), (bo, 2, 1, 1000.0)]);
    assert_eq!(
        standings(&board(&stack, "week-workouts").await),
        [(ana, 1, 1, 3.0), (ed, 2, 1, 3.0), (cy, 3, 3, 2.0), (bo, 4, 4, 1.0), (fe, 5, 4, 1.0)]
    );
    assert_eq!(
        standings(&board(&stack, "streak").await),
        [(ana, 1, 1, 3.0), (cy, 2, 2, 2.0), (ed, 3, 2, 2.0), (bo, 4, 4, 1.0), (fe, 5, 4, 1.0)]
    );
    let run = stack.store.runs().run(leaderboards::NAME, utc(slot)).await.unwrap().unwrap();
    assert_eq!((run.sent, run.messages_done, run.status.as_str()), (4, 2, "done"), "{run:?}");

    // The challenge's message again, as SQS may deliver it: its board is current, nothing is built or counted.
    deliver_again(&stack, leaderboards::NAME, slot, 1, serde_json::json!({ "challenge": active })).await;
    let again = stack.drain_totals().await;
    assert_eq!((again.sent, again.already_done), (0, 1), "{again:?}");
    assert_eq!(board(&stack, &format!("challenge-{active}")).await, standings_board, "the same version");
    // A message of the slot before, arriving late, builds nothing over the newer board; and the streak version
    // a worker of that slot built but died before switching to is deleted, entries and all.
    let stale = match &stack.store {
        Store::Sqlite(_) => "'2026-11-20T09:00:00.000000Z'",
        Store::Postgres(_) => "'2026-11-20T09:00:00Z'::timestamptz",
    };
    let unswitched = rows::<(i64,)>(
        &stack.store,
        &format!("INSERT INTO board_versions (board, slot, entries, built_at) VALUES ('streak', {stale}, 1, {stale}) RETURNING id"),
    )
    .await[0]
        .0;
    let entry = format!("INSERT INTO board_entries (version, position, rank, subject_id, score) VALUES ({unswitched}, 1, 1, {ana}, 9) RETURNING version");
    rows::<(i64,)>(&stack.store, &entry).await;
    deliver_again(&stack, leaderboards::NAME, "2026-11-20T09:00:00Z", 0, serde_json::json!("global")).await;
    let late = stack.drain_totals().await;
    assert_eq!((late.sent, late.skipped.get("a later slot's board is current")), (0, Some(&3)), "{late:?}");
    assert_eq!(board(&stack, "streak").await.slot, utc(slot));
    assert_eq!(versions_of(&stack, "streak").await, 1, "the unswitched version is gone, its entries with it");
    // A challenge deleted since its plan.
    deliver_again(&stack, leaderboards::NAME, slot, 2, serde_json::json!({ "challenge": active + 100 })).await;
    let gone = stack.drain_totals().await;
    assert_eq!(gone.skipped.get("challenge deleted"), Some(&1), "{gone:?}");
    let run = stack.store.runs().run(leaderboards::NAME, utc(slot)).await.unwrap().unwrap();
    assert_eq!(run.sent, 4, "each board counted once: {run:?}");
    let again = stack.plan(slot).await;
    assert_eq!(again.status, PlanStatus::AlreadyPlanned);
}

/// Bad messages on each analytics task's queue: each is dead-lettered with why, and the message beside it in
/// the same batch is worked.
async fn malformed_messages_are_dead_lettered_with_their_reason(backend: Backend) {
    let cases = [
        (leaderboards::NAME, serde_json::json!({ "challenge": -3 }), "no challenge has the id -3"),
        (leaderboards::NAME, serde_json::json!("weekly"), "unknown variant"),
        (trending::NAME, serde_json::json!({ "board": "workouts" }), "does not parse"),
        (user_stats::NAME, serde_json::json!({ "users": [3, 1] }), "out of order"),
        (user_stats::NAME, serde_json::json!({ "users": [1], "since": "2026-11-01" }), "unknown field `since`"),
    ];
    for (task, payload, reason) in cases {
        let stack = Stack::start(task, backend, utc("2026-11-23T01:00:04Z")).await;
        users(&stack, 1).await;
        let good = match task {
            leaderboards::NAME => serde_json::json!("global"),
            trending::NAME => serde_json::json!("workouts"),
            _ => serde_json::json!({ "users": [1] }),
        };
        for (part, payload) in [(0, payload.clone()), (1, good)] {
            deliver_again(&stack, task, "2026-11-23T00:00:00Z", part, payload).await;
        }
        let batches = stack.drain().await;
        let (retried, dead) = batches.iter().fold((0, 0), |(r, d), b| {
            let (br, bd) = b.retried_and_dead_lettered();
            (r + br, d + bd)
        });
        assert_eq!((retried, dead), (0, 1), "{task} {payload}: {batches:?}");
        let letters = stack.runtime.queue.peek_dead_letters(10).await.unwrap();
        assert_eq!(letters.len(), 1, "{task}");
        assert!(letters[0].reason.contains(reason), "{task} {payload}: {}", letters[0].reason);
        assert!(letters[0].body.contains(&payload.to_string()), "the message itself: {}", letters[0].body);
        let done: u64 = batches.iter().map(|b| b.totals().sent).sum();
        assert!(done >= 1, "{task}: the good message beside it was worked");
    }
}

/// The fixed counts of the trending test: (name, workouts in the recent window, in the previous one).
const TRENDING: &[(&str, usize, usize)] = &[
    ("Swim", 6, 0),   // 7 / 1 = 7
    ("Run", 9, 4),    // 10 / 5 = 2
    ("Row", 5, 2),    // 6 / 3 = 2: Run's growth, fewer recent workouts: after it
    ("Lift", 5, 9),   // 6 / 10 = 0.6
    ("Yoga", 4, 0),   // under the minimum of 5: not on the board
    ("Climb", 0, 12), // nothing recent
];

/// Monday 23 November 2026, 01:00 UTC: the recent window is 16–22 November, the previous one 9–15. Workouts of
/// each name and their sets' exercises, spread over both windows and outside them; the boards' counts,
/// growth, ranks and order agree with the same numbers counted here from the workouts made.
async fn trending_agrees_with_a_direct_count_and_builds_nothing_twice(backend: Backend) {
    let stack = Stack::start(trending::NAME, backend, utc("2026-11-23T01:00:04Z")).await;
    let ids = users(&stack, 3).await;
    let exercises = stack.app.add_exercises(&["Deadlift".into(), "Bench".into(), "Plank".into()]).await.unwrap();
    let (recent_days, previous_days) = (date("2026-11-16"), date("2026-11-09"));
    let mut workouts = vec![];
    // (exercise id, local date, workout index): to count exercises per workout, the way the board should.
    let mut included = BTreeSet::new();
    for (n, &(name, recent, previous)) in TRENDING.iter().enumerate() {
        let windows = [(recent_days, recent), (previous_days, previous)];
        for (first, count) in windows {
            for i in 0..count {
                let day = first + Duration::days((i % 7) as i64);
                // Every third workout has two sets of one exercise (counted once) and one of another.
                let sets = match (n + i) % 3 {
                    0 => vec![set(exercises[0], 100.0, 5), set(exercises[0], 100.0, 5), set(exercises[1], 60.0, 8)],
                    1 => vec![set(exercises[2], 0.0, 1)],
                    _ => vec![],
                };
                for s in &sets {
                    included.insert((s.exercise_id, day, workouts.len()));
                }
                workouts.push(workout(ids[i % ids.len()], &day.to_string(), name, 30, sets));
            }
        }
    }
    // Outside both windows: the slot's own day and the day before the previous window.
    for day in ["2026-11-23", "2026-11-08"] {
        workouts.push(workout(ids[0], day, "Swim", 30, vec![set(exercises[1], 50.0, 5)]));
    }
    stack.app.add_workouts(&workouts).await.unwrap();

    let slot = "2026-11-23T01:00:00Z";
    let plan = stack.plan(slot).await;
    assert_eq!(plan.messages, 2);
    let work = stack.drain_totals().await;
    assert_eq!(work.sent, 2, "{work:?}");

    // Workout names: counted from TRENDING, growth as the module documents it.
    let expected = expected_board(TRENDING.iter().map(|&(name, r, p)| (name.to_owned(), r as i64, p as i64)));
    let workouts_board = board(&stack, "trending-workouts").await;
    assert_eq!(entries_of(&workouts_board), expected);
    assert_eq!(
        expected.iter().map(|e| (e.0.as_str(), e.1)).collect::<Vec<_>>(),
        [("Swim", 1), ("Run", 2), ("Row", 2), ("Lift", 4)],
        "the growth formula ranks as documented, equal growth sharing a rank"
    );
    // Exercises: the workouts that included each, per window, counted from what was made.
    let names = ["Deadlift", "Bench", "Plank"];
    let mut counts: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (exercise, day, _) in &included {
        let name = names[exercises.iter().position(|e| e == exercise).unwrap()].to_owned();
        let entry = counts.entry(name).or_default();
        if *day >= recent_days && *day <= date("2026-11-22") {
            entry.0 += 1;
        } else if *day >= previous_days && *day < recent_days {
            entry.1 += 1;
        }
    }
    let exercises_board = board(&stack, "trending-exercises").await;
    assert_eq!(entries_of(&exercises_board), expected_board(counts.into_iter().map(|(n, (r, p))| (n, r, p))));
    assert!(exercises_board.entries.iter().all(|e| e.subject_id.is_some()), "exercises carry their id");

    // Redelivered: nothing built, nothing counted.
    deliver_again(&stack, trending::NAME, slot, 0, serde_json::json!("workouts")).await;
    let again = stack.drain_totals().await;
    assert_eq!((again.sent, again.already_done), (0, 1), "{again:?}");
    assert_eq!(board(&stack, "trending-workouts").await.version, workouts_board.version);
    // A daily task's run is its day's: the slot is truncated to midnight.
    let run = stack.store.runs().run(trending::NAME, utc("2026-11-23T00:00:00Z")).await.unwrap().unwrap();
    assert_eq!(run.sent, 2, "{run:?}");

    // Two more days: a new version each, and only the current one and the one it replaced are kept.
    for next in ["2026-11-24T01:00:00Z", "2026-11-25T01:00:00Z"] {
        stack.set_clock(next);
        stack.plan(next).await;
        assert_eq!(stack.drain_totals().await.sent, 2);
    }
    let latest = board(&stack, "trending-workouts").await;
    assert!(latest.version > workouts_board.version && latest.slot == utc("2026-11-25T00:00:00Z"), "{latest:?}");
    assert_eq!(versions_of(&stack, "trending-workouts").await, 2);
}

/// (label, rank, recent, previous, score) in position order, as the trending module documents it.
fn expected_board(counts: impl Iterator<Item = (String, i64, i64)>) -> Vec<(String, i64, i64, i64, f64)> {
    let mut scored: Vec<(String, i64, i64, f64)> = counts
        .filter(|(_, recent, _)| *recent >= trending::MIN_RECENT)
        .map(|(name, recent, previous)| {
            let growth = (recent + 1) as f64 / (previous + 1) as f64;
            (name, recent, previous, growth)
        })
        .collect();
    scored.sort_by(|a, b| b.3.total_cmp(&a.3).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
    let mut ranked = vec![];
    for (i, (name, recent, previous, growth)) in scored.iter().enumerate() {
        let rank = scored.iter().position(|s| s.3 == *growth).unwrap() as i64 + 1;
        assert!(rank <= i as i64 + 1);
        ranked.push((name.clone(), rank, *recent, *previous, *growth));
    }
    ranked
}

fn entries_of(board: &Board) -> Vec<(String, i64, i64, i64, f64)> {
    board
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            assert_eq!(e.position, i as i64 + 1);
            (e.label.clone().unwrap(), e.rank, e.recent.unwrap(), e.previous.unwrap(), e.score)
        })
        .collect()
}

/// A small generator, so the seeded data is the same on every run and on both stores.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// One user's numbers as the direct SQL computes them: workouts, minutes, volume, PR sets.
type Direct = (i64, i64, i64, f64, i64);

/// Sunday 22 November 2026, 01:30 UTC: 60 users with up to 45 days of seeded workouts (some none, some only
/// before the window), worked in chunks of 25. Each user's stats agree with SQL written here another way
/// (correlated subqueries; the best set as the set no other set beats), a redelivered chunk writes and counts
/// nothing, the next night refreshes only the user who trained since, and a week later everyone else.
async fn stats_agree_with_a_direct_computation(backend: Backend) {
    let mut stack = Stack::start(user_stats::NAME, backend, utc("2026-11-22T01:30:03Z")).await;
    stack.runtime.task = Arc::new(user_stats::UserStatsTask { cache: stack.store.stats_cache(), chunk_size: 25 });
    let ids = users(&stack, 60).await;
    let exercises =
        stack.app.add_exercises(&["Squat".into(), "Bench".into(), "Row".into(), "Press".into()]).await.unwrap();
    let mut rng = Lcg(11);
    let mut workouts = vec![];
    for (n, &id) in ids.iter().enumerate() {
        let days_trained = match n % 10 {
            0 => 0,
            _ => rng.below(20),
        };
        for _ in 0..days_trained {
            // From 45 days back to the slot's day: some before the window; the slot's day starts before 01:30.
            let back = if n % 10 == 1 { 31 + rng.below(14) } else { rng.below(45) };
            let day = date("2026-11-22") - Duration::days(back as i64);
            let sets = (0..rng.below(5))
                .map(|_| NewSet {
                    exercise_id: exercises[rng.below(4) as usize],
                    weight_kg: 20.0 + 2.5 * rng.below(8) as f64,
                    reps: 1 + rng.below(10) as i64,
                    personal_record: rng.below(6) == 0,
                })
                .collect();
            let mut w = workout(id, &day.to_string(), "Gym", 10 + rng.below(80) as i64, sets);
            w.started_at = day.and_hms_opt(0, 30, 0).unwrap().and_utc();
            workouts.push(w);
        }
    }
    stack.app.add_workouts(&workouts).await.unwrap();

    let slot = "2026-11-22T01:30:00Z";
    let plan = stack.plan(slot).await;
    assert_eq!((plan.planned, plan.messages), (60, 3), "every user, never computed, in chunks of 25");
    let work = stack.drain_totals().await;
    assert_eq!((work.sent, work.already_done), (60, 0), "{work:?}");
    check_stats(&stack, &ids, ("2026-10-24", "2026-11-22"), utc("2026-11-22T01:30:03Z")).await;
    assert!(
        stack.store.stats_cache().stats(&ids).await.unwrap().iter().any(|s| s.workouts > 0 && s.records.len() > 1),
        "the data means something"
    );

    // The first chunk again: written before for this window, so nothing is written or counted.
    let first: Vec<i64> = ids[..25].to_vec();
    deliver_again(&stack, user_stats::NAME, slot, 0, serde_json::json!({ "users": first })).await;
    let again = stack.drain_totals().await;
    assert_eq!((again.sent, again.already_done), (0, 25), "{again:?}");
    // A daily task's run is its day's: the slot is truncated to midnight.
    let run = stack.store.runs().run(user_stats::NAME, utc("2026-11-22T00:00:00Z")).await.unwrap().unwrap();
    assert_eq!((run.sent, run.messages_done), (60, 3), "{run:?}");

    // The next night: the users with a workout of the window written since their stats were computed, whenever
    // it started. The one who trained that evening; the one whose workout was under way at 01:30 and written when
    // it ended ("started after the stats" would never see it); the one whose phone was offline, with a workout of
    // the 19th written now (nor would "started in the day before"). Not the one who logs a workout of October,
    // before the window; nor anyone whose workouts of the 22nd were written before the stats and are in them.
    let keen = ids[7];
    let mut late = workout(keen, "2026-11-22", "Evening run", 45, vec![set(exercises[0], 140.0, 3)]);
    late.started_at = utc("2026-11-22T19:00:00Z");
    let under_way_user = ids[10];
    let mut under_way = workout(under_way_user, "2026-11-22", "Long ride", 60, vec![set(exercises[1], 60.0, 8)]);
    under_way.started_at = utc("2026-11-22T01:00:00Z");
    let offline_user = ids[12];
    let mut offline = workout(offline_user, "2026-11-19", "Trail run", 50, vec![set(exercises[2], 30.0, 12)]);
    offline.started_at = utc("2026-11-19T06:00:00Z");
    let archivist = ids[14];
    let mut archived = workout(archivist, "2026-10-01", "Swim", 30, vec![]);
    archived.started_at = utc("2026-10-01T06:00:00Z");
    stack.app.add_workouts(&[late, under_way, offline, archived]).await.unwrap();
    assert!(
        workouts.iter().any(|w| w.started_at > utc("2026-11-21T01:30:03Z")),
        "some seeded workouts started in the day before the stats, and were written before them: they are in them"
    );
    let recent = vec![keen, under_way_user, offline_user];
    stack.set_clock("2026-11-23T01:30:03Z");
    let plan = stack.plan("2026-11-23T01:30:00Z").await;
    assert_eq!(plan.planned, recent.len() as u64, "{plan:?}");
    assert_eq!(stack.drain_totals().await.sent, recent.len() as u64);
    check_stats(&stack, &recent, ("2026-10-25", "2026-11-23"), utc("2026-11-23T01:30:03Z")).await;

    // A week after the first night, everyone else's stats are a week old; nothing was written since the 23rd.
    stack.set_clock("2026-11-29T01:30:03Z");
    let plan = stack.plan("2026-11-29T01:30:00Z").await;
    let due: Vec<i64> = ids.iter().copied().filter(|id| !recent.contains(id)).collect();
    assert_eq!(plan.planned, due.len() as u64, "all but those refreshed on the 23rd: {plan:?}");
    assert_eq!(stack.drain_totals().await.sent, due.len() as u64);
    check_stats(&stack, &due, ("2026-10-31", "2026-11-29"), utc("2026-11-29T01:30:03Z")).await;
}

/// Compares the cached stats of `users` with the same numbers computed here in SQL both dialects read alike.
async fn check_stats(stack: &Stack, users: &[i64], (start, end): (&str, &str), computed_at: DateTime<Utc>) {
    let window = format!("w.local_date >= '{start}' AND w.local_date <= '{end}'");
    let direct: Vec<Direct> = rows(
        &stack.store,
        &format!(
            "SELECT u.id,
                    (SELECT count(*) FROM workouts w WHERE w.user_id = u.id AND {window}),
                    (SELECT coalesce(sum(w.duration_minutes), 0) FROM workouts w WHERE w.user_id = u.id AND {window}),
                    (SELECT coalesce(sum(s.weight_kg * s.reps), 0.0) FROM workout_sets s
                     WHERE s.workout_id IN (SELECT w.id FROM workouts w WHERE w.user_id = u.id AND {window})),
                    (SELECT count(*) FROM workout_sets s
                     WHERE s.personal_record AND s.workout_id IN (SELECT w.id FROM workouts w
                                                                  WHERE w.user_id = u.id AND {window}))
             FROM users u ORDER BY u.id"
        ),
    )
    .await;
    // Best sets: those no set of the same user and exercise in the window beats by weight, then by reps.
    let best: Vec<(i64, i64, f64, i64)> = rows(
        &stack.store,
        &format!(
            "SELECT DISTINCT w.user_id, s.exercise_id, s.weight_kg, CAST(s.reps AS BIGINT)
             FROM workout_sets s JOIN workouts w ON w.id = s.workout_id
             WHERE {window}
               AND NOT EXISTS (
                   SELECT 1 FROM workout_sets o JOIN workouts ow ON ow.id = o.workout_id
                   WHERE ow.user_id = w.user_id AND o.exercise_id = s.exercise_id
                     AND ow.local_date >= '{start}' AND ow.local_date <= '{end}'
                     AND (o.weight_kg > s.weight_kg OR (o.weight_kg = s.weight_kg AND o.reps > s.reps)))"
        ),
    )
    .await;
    let prs: Vec<(i64, i64, i64)> = rows(
        &stack.store,
        &format!(
            "SELECT w.user_id, s.exercise_id, sum(CASE WHEN s.personal_record THEN 1 ELSE 0 END)
             FROM workout_sets s JOIN workouts w ON w.id = s.workout_id
             WHERE {window} GROUP BY w.user_id, s.exercise_id"
        ),
    )
    .await;
    let cached = stack.store.stats_cache().stats(users).await.unwrap();
    assert_eq!(cached.len(), users.len());
    for stats in cached {
        let (_, workouts, minutes, volume, pr_sets) = direct.iter().find(|d| d.0 == stats.user_id).copied().unwrap();
        let user = stats.user_id;
        assert_eq!((stats.window_start, stats.window_end), (date(start), date(end)), "user {user}");
        assert_eq!((stats.workouts, stats.minutes, stats.pr_sets), (workouts, minutes, pr_sets), "user {user}");
        assert!((stats.volume_kg - volume).abs() < 1e-6, "user {user}: {} against {volume}", stats.volume_kg);
        assert!((stats.workouts_per_week - workouts as f64 * 7.0 / 30.0).abs() < 1e-9, "user {user}");
        assert_eq!(stats.computed_at, computed_at);
        let expected: BTreeMap<i64, (f64, i64, i64)> = best
            .iter()
            .filter(|b| b.0 == user)
            .map(|&(_, exercise, weight, reps)| {
                let prs = prs.iter().find(|p| p.0 == user && p.1 == exercise).map_or(0, |p| p.2);
                (exercise, (weight, reps, prs))
            })
            .collect();
        let got: BTreeMap<i64, (f64, i64, i64)> =
            stats.records.iter().map(|r| (r.exercise_id, (r.best_weight_kg, r.best_reps, r.pr_sets))).collect();
        assert_eq!(got, expected, "user {user}'s records");
        let names: Vec<&str> = stats.records.iter().map(|r| r.exercise.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "records by exercise name");
    }
}

integration_tests::on_both_stores!(
    readers_see_the_old_board_or_the_new_one_never_a_mix,
    ties_share_a_rank_and_the_next_rank_skips,
    malformed_messages_are_dead_lettered_with_their_reason,
    trending_agrees_with_a_direct_count_and_builds_nothing_twice,
    stats_agree_with_a_direct_computation,
);
