//! Demo and benchmark data: users across many time zones (with :30 and :45 offsets), a month of workouts with
//! sets and personal records, some users who stopped training or never started, phones and devices, channel
//! choices, and challenges around the last day; the shop's products and subscriptions; and the rows the
//! cleanups delete, of every age — generated from a seed so every run makes the same data.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use rand::{rngs::StdRng, Rng, SeedableRng};
use shared::{
    ports::{
        AppWriter, Channel, Choice, Contacts, Device, Kind, MaintenanceWriter, NewCart, NewProduct, NewRow, NewSet,
        NewSubscription, NewUser, NewWorkout, ShopWriter, Swept,
    },
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
    /// Workouts that end at this instant or later are not written but returned in `Seeded::later`, for a
    /// simulation to write as its clock reaches their end, as the app would; `None` writes them all.
    pub written_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct Seeded {
    pub users: usize,
    pub workouts: usize,
    pub sets: usize,
    pub devices: usize,
    pub challenges: usize,
    /// Every user made, in order.
    pub user_ids: Vec<i64>,
    /// The workouts not written (see `SeedSpec::written_before`), in the order they end.
    pub later: Vec<NewWorkout>,
}

/// When the app writes a workout: as it ends.
pub fn written_at(workout: &NewWorkout) -> DateTime<Utc> {
    workout.started_at + Duration::minutes(workout.duration_minutes)
}

/// A device's SNS platform endpoint, made up but well formed.
pub fn endpoint_arn(user_id: i64, platform: &str) -> String {
    format!("arn:aws:sns:us-east-1:123456789012:endpoint/{platform}/fitness/{user_id:08x}-0000-4000-8000-000000000000")
}

/// Challenges around `last_day`, as (title, starts on, ends on): one ending and one starting within the last
/// few days, a weekend one, and one the app stored with its end before its start.
pub fn challenges(last_day: NaiveDate) -> Vec<(&'static str, NaiveDate, NaiveDate)> {
    let day = |offset: i64| last_day + Duration::days(offset);
    vec![
        ("Thirty-day plank", day(-27), day(-4)),
        ("Step it up", day(-4), day(20)),
        ("Weekend warrior", day(-2), day(-1)),
        ("Backwards dates", day(-3), day(-5)),
    ]
}

pub async fn seed(writer: &dyn AppWriter, contacts: &dyn Contacts, spec: &SeedSpec) -> shared::Result<Seeded> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let exercise_ids = writer.add_exercises(&EXERCISES.iter().map(|s| s.to_string()).collect::<Vec<_>>()).await?;
    let mut seeded = Seeded::default();
    let mut all_ids = vec![];
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
        // Everyone signed up before the data starts: a user who never trained counts from then.
        let signed_up = (spec.last_day - Duration::days(spec.days as i64 + 10)).and_hms_opt(12, 0, 0).expect("noon");
        writer.set_created_at(&ids, signed_up.and_utc()).await?;
        let mut workouts = vec![];
        for (user, &id) in users.iter().zip(&ids) {
            let zone: Tz = user.time_zone.parse().unwrap_or(Tz::UTC);
            let keenness = rng.random_range(0.2..0.8);
            // Some never train; some stopped a few days before the last day (the inactivity reminders' users).
            let (never, stopped) = (rng.random_bool(0.03), rng.random_bool(0.15));
            let quiet_days = if stopped { rng.random_range(2..10) } else { 0 };
            if rng.random_bool(0.4) {
                let platform = if id % 2 == 0 { "APNS" } else { "GCM" };
                let device = Device { endpoint_arn: endpoint_arn(id, platform), platform: platform.into() };
                contacts.add_device(id, &device).await?;
                seeded.devices += 1;
            }
            if rng.random_bool(0.15) {
                for kind in [Kind::Reminders, Kind::Challenges] {
                    contacts.choose(id, Choice { kind, channel: Channel::Sms, allowed: true }).await?;
                }
            }
            if rng.random_bool(0.05) {
                contacts.choose(id, Choice { kind: Kind::Reminders, channel: Channel::Push, allowed: false }).await?;
            }
            for back in quiet_days..spec.days {
                let day = spec.last_day - Duration::days(back as i64);
                if !never && rng.random_bool(keenness) {
                    workouts.push(workout(&mut rng, id, zone, day, &exercise_ids));
                }
            }
        }
        seeded.users += users.len();
        seeded.workouts += workouts.len();
        seeded.sets += workouts.iter().map(|w| w.sets.len()).sum::<usize>();
        if let Some(before) = spec.written_before {
            let (now, later): (Vec<_>, Vec<_>) = workouts.into_iter().partition(|w| written_at(w) < before);
            seeded.later.extend(later);
            workouts = now;
        }
        writer.add_workouts(&workouts).await?;
        all_ids.extend(ids);
    }
    for (title, starts_on, ends_on) in challenges(spec.last_day) {
        let id = writer.add_challenge(title, starts_on, ends_on).await?;
        let joined: Vec<i64> = all_ids.iter().copied().filter(|_| rng.random_bool(0.3)).collect();
        writer.join_challenge(id, &joined).await?;
        seeded.challenges += 1;
    }
    seeded.user_ids = all_ids;
    seeded.later.sort_by_key(written_at);
    Ok(seeded)
}

/// The shop's products: three well stocked, then one sold out and one nearly.
const PRODUCTS: &[(&str, i64, i64)] = &[
    ("Whey protein 1 kg", 249_900, 10_000),
    ("Protein bars, box of 12", 89_900, 10_000),
    ("Electrolyte tablets", 34_900, 10_000),
    ("Creatine 300 g", 129_900, 0),
    ("Oat bars, box of 6", 44_900, 12),
];

#[derive(Debug, Default)]
pub struct SeededShop {
    pub products: usize,
    pub subscriptions: usize,
    pub due_in_range: usize,
}

/// Subscriptions for about four users in five, of every frequency (weekly, every 10 or 14 days, monthly on a
/// day from the 1st to the 31st), next due from `from` to 20 days after it; mostly good cards, a few whose
/// gateway times out or fails once, one that always declines and one that declines twice, and one the app
/// stored with a frequency the code does not know.
pub async fn seed_shop(
    shop: &dyn ShopWriter,
    users: &[i64],
    from: NaiveDate,
    days: u32,
    seed: u64,
) -> shared::Result<SeededShop> {
    let mut rng = StdRng::seed_from_u64(seed);
    let products: Vec<NewProduct> = PRODUCTS
        .iter()
        .map(|&(name, price_cents, stock)| NewProduct { name: name.into(), price_cents, currency: "INR".into(), stock })
        .collect();
    let product_ids = shop.add_products(&products).await?;
    let mut subscriptions = vec![];
    for (n, &user_id) in users.iter().enumerate() {
        // The first six always subscribe: the cards scripted to decline and the unknown frequency are among them.
        if n > 5 && !rng.random_bool(0.8) {
            continue;
        }
        // The scripted ones are due on the first day, so the demo shows them.
        let next_delivery_date = if n <= 5 { from } else { from + Duration::days(rng.random_range(0..20)) };
        let (frequency, interval_days, anchor_day) = match rng.random_range(0..3) {
            0 => ("weekly", None, None),
            1 => ("every_n_days", Some([10, 14][rng.random_range(0..2)]), None),
            _ => ("monthly", None, Some(i64::from(next_delivery_date.day()))),
        };
        let payment_method = match n {
            3 => "pm_decline_always".to_owned(),
            4 => "pm_decline_2_times".to_owned(),
            _ if rng.random_bool(0.05) => format!("pm_timeout_{user_id}"),
            _ if rng.random_bool(0.05) => format!("pm_5xx_{user_id}"),
            _ => format!("pm_card_{user_id}"),
        };
        subscriptions.push(NewSubscription {
            user_id,
            // The scripted cards buy what is in stock, so that their charges happen.
            // One in ten buys one of the two scarce products.
            product_id: product_ids[match n {
                0..=5 => 0,
                _ if rng.random_bool(0.9) => rng.random_range(0..3),
                _ => rng.random_range(3..PRODUCTS.len()),
            }],
            quantity: rng.random_range(1..4),
            frequency: if n == 5 { "fortnightly".into() } else { frequency.into() },
            interval_days,
            anchor_day,
            next_delivery_date,
            payment_method,
        });
    }
    let last = from + Duration::days(i64::from(days) - 1);
    let due_in_range = subscriptions.iter().filter(|s| s.next_delivery_date <= last).count();
    shop.add_subscriptions(&subscriptions).await?;
    Ok(SeededShop { products: product_ids.len(), subscriptions: subscriptions.len(), due_in_range })
}

/// The rows the cleanups delete, as the app would have written them up to the last day: carts (two in five
/// empty, some a guest's) last changed up to 60 days before the first day; reset and verification tokens and
/// OTP codes expiring from a few days before it to a day or two after the last; sessions last seen up to 60
/// days before; audit logs written up to 150 days before; temporary uploads from 3 days before. Pure, so a test
/// can tell from it alone what a run must delete.
pub struct MaintenanceRows {
    pub carts: Vec<NewCart>,
    /// Per table other than carts, its rows.
    pub rows: Vec<(Swept, Vec<NewRow>)>,
}

pub fn maintenance_rows(users: &[i64], from: NaiveDate, to: NaiveDate, seed: u64) -> MaintenanceRows {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = |days_before: i64| (from - Duration::days(days_before)).and_time(NaiveTime::MIN).and_utc();
    let end = |days_after: i64| (to + Duration::days(days_after + 1)).and_time(NaiveTime::MIN).and_utc();
    let mut at = |from: DateTime<Utc>, to: DateTime<Utc>| -> DateTime<Utc> {
        from + Duration::seconds(rng.random_range(0..(to - from).num_seconds()))
    };
    let n = users.len().max(1);
    let user = |i: usize| users.get(i % n).copied();
    let carts = (0..n * 2)
        .map(|i| NewCart {
            user_id: if i % 7 == 0 { None } else { user(i) },
            items: if i % 5 < 2 { 0 } else { (i % 3) as u32 + 1 },
            updated_at: at(start(60), end(0)),
        })
        .collect();
    let mut rows = vec![];
    for (table, count, lo, hi) in [
        (Swept::PasswordResetTokens, n / 2, start(5), end(2)),
        (Swept::EmailVerificationTokens, n / 2, start(5), end(2)),
        (Swept::OtpCodes, n, start(2), end(1)),
        (Swept::Sessions, n * 3 / 2, start(60), end(0)),
        (Swept::AuditLogs, n * 3, start(150), end(0)),
        (Swept::TempUploads, n / 2, start(3), end(0)),
    ] {
        let owned = |i: usize| if table == Swept::AuditLogs && i % 10 == 0 { None } else { user(i) };
        rows.push((table, (0..count).map(|i| NewRow { owner: owned(i), at: at(lo, hi) }).collect()));
    }
    MaintenanceRows { carts, rows }
}

#[derive(Debug, Default)]
pub struct SeededMaintenance {
    /// Every cart made, in order, with when it was last changed.
    pub carts: Vec<(i64, DateTime<Utc>)>,
    /// Rows of the other swept tables.
    pub rows: usize,
}

/// Seeds `maintenance_rows` through the app's side of the swept tables.
pub async fn seed_maintenance(
    writer: &dyn MaintenanceWriter,
    users: &[i64],
    from: NaiveDate,
    to: NaiveDate,
    seed: u64,
) -> shared::Result<SeededMaintenance> {
    let MaintenanceRows { carts, rows } = maintenance_rows(users, from, to, seed);
    let ids = writer.add_carts(&carts).await?;
    let mut seeded =
        SeededMaintenance { carts: ids.into_iter().zip(carts.iter().map(|c| c.updated_at)).collect(), rows: 0 };
    for (table, rows) in rows {
        seeded.rows += writer.add_rows(table, &rows).await?.len();
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
