//! Demo and benchmark data: users across many time zones (with :30 and :45 offsets) and a month of workouts
//! with sets and personal records, generated from a seed so every run makes the same data.

use chrono::{Duration, NaiveDate, NaiveTime};
use chrono_tz::Tz;
use rand::{rngs::StdRng, Rng, SeedableRng};
use shared::{
    ports::{AppWriter, NewSet, NewUser, NewWorkout},
    time::wall_clock_instant,
};

/// Zones and their share of users: both American coasts, Europe, India (+05:30), Nepal (+05:45), East Asia,
/// Australia and New Zealand, so every hour of the UTC day has someone reaching 06:00.
pub const ZONES: &[&str] = &[
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
];

const FIRST: &[&str] =
    &["Ana", "Bruno", "Chen", "Divya", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Liam"];
const LAST: &[&str] =
    &["Silva", "Okafor", "Nguyen", "Sharma", "Müller", "Tanaka", "Smith", "Rossi", "Haddad", "Kowalski"];
const EXERCISES: &[&str] = &["Bench press", "Back squat", "Deadlift", "Overhead press", "Barbell row", "Pull-up"];
const STRENGTH: &[&str] = &["Upper body", "Leg day", "Full body", "Push", "Pull"];
const CARDIO: &[&str] = &["5k run", "Cycling", "HIIT", "Rowing", "Yoga flow"];

pub struct SeedSpec {
    pub users: usize,
    /// The last local day with workouts; the month before it is filled.
    pub last_day: NaiveDate,
    pub days: u32,
    /// Adds one user whose time zone is not a zone, to show how the jobs report it.
    pub with_unknown_zone: bool,
    pub seed: u64,
}

#[derive(Debug, Default)]
pub struct Seeded {
    pub users: usize,
    pub workouts: usize,
    pub sets: usize,
}

pub async fn seed(writer: &dyn AppWriter, spec: &SeedSpec) -> shared::Result<Seeded> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let exercise_ids = writer.add_exercises(&EXERCISES.iter().map(|s| s.to_string()).collect::<Vec<_>>()).await?;
    let mut seeded = Seeded::default();
    // Users go in in batches so a benchmark-sized seed never holds all workouts in memory at once.
    for first in (0..spec.users).step_by(2_000) {
        let count = (spec.users - first).min(2_000);
        let users: Vec<NewUser> = (first..first + count)
            .map(|i| {
                let zone = if spec.with_unknown_zone && i == 0 { "Mars/Olympus_Mons" } else { ZONES[i % ZONES.len()] };
                NewUser {
                    name: format!(
                        "{} {}",
                        FIRST[rng.random_range(0..FIRST.len())],
                        LAST[rng.random_range(0..LAST.len())]
                    ),
                    email: format!("user{}@example.com", i + 1),
                    phone: Some(format!("+1555{:07}", i + 1)),
                    time_zone: zone.to_owned(),
                    email_opt_in: rng.random_bool(0.9),
                }
            })
            .collect();
        let ids = writer.add_users(&users).await?;
        let mut workouts = vec![];
        for (user, id) in users.iter().zip(ids) {
            let zone: Tz = user.time_zone.parse().unwrap_or(Tz::UTC);
            let keenness = rng.random_range(0.2..0.8);
            for back in 0..spec.days {
                let day = spec.last_day - Duration::days(back as i64);
                if rng.random_bool(keenness) {
                    workouts.push(workout(&mut rng, id, zone, day, &exercise_ids));
                }
            }
        }
        seeded.users += users.len();
        seeded.workouts += workouts.len();
        seeded.sets += workouts.iter().map(|w| w.sets.len()).sum::<usize>();
        writer.add_workouts(&workouts).await?;
    }
    Ok(seeded)
}

fn workout(rng: &mut StdRng, user_id: i64, zone: Tz, day: NaiveDate, exercise_ids: &[i64]) -> NewWorkout {
    let strength = rng.random_bool(0.6);
    let at = NaiveTime::from_hms_opt(rng.random_range(6..21), rng.random_range(0..60), 0).expect("a valid time");
    let duration_minutes = rng.random_range(20..95);
    let sets = if strength {
        (0..rng.random_range(3..7))
            .map(|_| NewSet {
                exercise_id: exercise_ids[rng.random_range(0..exercise_ids.len())],
                weight_kg: (rng.random_range(8..60) as f64) * 2.5,
                reps: rng.random_range(3..13),
                personal_record: rng.random_bool(0.04),
            })
            .collect()
    } else {
        vec![]
    };
    let names = if strength { STRENGTH } else { CARDIO };
    NewWorkout {
        user_id,
        name: names[rng.random_range(0..names.len())].to_owned(),
        started_at: wall_clock_instant(zone, day, at),
        local_date: day,
        duration_minutes,
        calories: duration_minutes * rng.random_range(6..12),
        sets,
    }
}
