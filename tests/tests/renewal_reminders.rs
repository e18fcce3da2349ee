//! renewal-reminders through the real runtime on both stores (SQLite, PostgreSQL), with the queue embedded on
//! virtual time and the mailer in memory: each delivery announced once, 24 hours ahead, in the customer's zone,
//! and nothing announced that will not be charged.

use chrono::{DateTime, Utc};
use infra::wiring::Store;
use integration_tests::nudges::{Backend, Stack};
use shared::{
    ports::{Email, NewUser},
    runtime::{JobMessage, PlanStatus},
    tasks::{self, messages::Letterhead, shop::renewal_reminders::NAME, Deps},
};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Runs the app's SQL on either store; the ids a `RETURNING id` gives back. Products and subscriptions are
/// written here as the app writes them (the shop's writer lives on another branch).
async fn app_sql(store: &Store, sql: &str) -> Vec<i64> {
    match store {
        Store::Sqlite(s) => sqlx::query_scalar(sql).fetch_all(s.db()).await,
        Store::Postgres(s) => sqlx::query_scalar(sql).fetch_all(s.pool()).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn product(store: &Store, name: &str, price_cents: i64, currency: &str) -> i64 {
    let sql = format!(
        "INSERT INTO products (name, price_cents, currency, stock) VALUES ('{name}', {price_cents}, '{currency}', 100)
         RETURNING id"
    );
    app_sql(store, &sql).await[0]
}

/// A subscription delivering `frequency` ("weekly", or "monthly" on its anchor day) next on `next`.
async fn subscribe(store: &Store, user: i64, product: i64, quantity: i64, frequency: &str, next: &str) -> i64 {
    let anchor = if frequency == "monthly" { &next[8..] } else { "NULL" };
    let sql = format!(
        "INSERT INTO subscriptions (user_id, product_id, quantity, frequency, anchor_day, next_delivery_date,
                                    payment_method)
         VALUES ({user}, {product}, {quantity}, '{frequency}', {anchor}, '{next}', 'card_visa_{user}')
         RETURNING id"
    );
    app_sql(store, &sql).await[0]
}

/// Customers in these zones; their email switch is off, which a transactional email ignores.
async fn customers(stack: &Stack, zones: &[&str]) -> Vec<i64> {
    let users: Vec<NewUser> = zones
        .iter()
        .enumerate()
        .map(|(i, zone)| NewUser {
            name: format!("Customer {i}"),
            email: format!("c{i}@example.com"),
            phone: Some("+447700900123".into()),
            time_zone: (*zone).into(),
            email_opt_in: false,
        })
        .collect();
    stack.app.add_users(&users).await.unwrap()
}

/// The stack with the shop's address configured.
async fn stack(backend: Backend, now: &str) -> Stack {
    let mut stack = Stack::start(NAME, backend, utc(now)).await;
    let letterhead = Letterhead { from: "shop@example.com".into(), signer: None, preferences: None };
    let deps = Deps {
        shop_url: Some("https://shop.example/".into()),
        ..stack.store.deps(stack.mailer.clone(), stack.notifier.clone(), letterhead)
    };
    stack.runtime.task = tasks::build(NAME, &deps).unwrap();
    stack
}

fn sent_to(stack: &Stack, address: &str) -> Vec<Email> {
    stack.mailer.sent().into_iter().filter(|e| e.to == address).collect()
}

/// Monday 30 November 2026, 00:00 UTC: the deliveries of Tuesday 1 December are reminded, by email only, each
/// with its charge time in its customer's zone; a redelivered message and a second plan send nothing.
async fn reminds_tomorrows_deliveries_once_in_each_customers_zone(backend: Backend) {
    let stack = stack(backend, "2026-11-30T00:00:04Z").await;
    let ids = customers(&stack, &["America/New_York", "Asia/Kolkata", "Europe/London", "Moon/Base"]).await;
    let (ana, bo, cy, di) = (ids[0], ids[1], ids[2], ids[3]);
    let store = &stack.store;
    let coffee = product(store, "Coffee beans", 129_900, "INR").await;
    let tea = product(store, "Tea", 1_250, "USD").await;
    let ana_coffee = subscribe(store, ana, coffee, 1, "weekly", "2026-12-01").await;
    subscribe(store, bo, tea, 2, "weekly", "2026-12-01").await;
    subscribe(store, cy, tea, 1, "weekly", "2026-12-02").await;
    let paused = subscribe(store, cy, coffee, 1, "weekly", "2026-12-01").await;
    app_sql(store, &format!("UPDATE subscriptions SET status = 'paused' WHERE id = {paused}")).await;
    subscribe(store, di, tea, 1, "weekly", "2026-12-01").await;

    let plan = stack.plan("2026-11-30T00:00:00Z").await;
    assert_eq!(plan.planned, 3, "Ana's, Bo's and Di's; Cy's are paused or due later: {plan:?}");
    let work = stack.drain_totals().await;
    assert_eq!((work.sent, work.skipped_total(), work.failed), (3, 0, 0), "{work:?}");
    assert!(stack.notifier.sms_sent().is_empty() && stack.notifier.pushed().is_empty(), "email only");

    let ana_email = sent_to(&stack, "c0@example.com");
    assert_eq!(ana_email.len(), 1);
    assert_eq!(ana_email[0].subject, "Renewing Monday 30 November at 19:00: 1 × Coffee beans for ₹1,299.00");
    let weekly = "every week: the next one on Monday 7 December at 19:00";
    assert!(ana_email[0].text.contains(weekly), "{}", ana_email[0].text);
    let link = format!("https://shop.example/account/subscriptions/{ana_coffee}");
    assert!(ana_email[0].html.contains(&link) && ana_email[0].text.contains(&link), "{}", ana_email[0].text);
    assert!(ana_email[0].text.contains(&format!("card_visa_{ana}")), "{}", ana_email[0].text);
    assert_eq!(ana_email[0].unsubscribe, None, "transactional");
    let bo_email = sent_to(&stack, "c1@example.com");
    assert_eq!(bo_email[0].subject, "Renewing Tuesday 1 December at 05:30: 2 × Tea for $25.00");
    let di_email = sent_to(&stack, "c3@example.com");
    assert_eq!(di_email[0].subject, "Renewing Tuesday 1 December at 00:00 UTC: 1 × Tea for $12.50");
    assert!(di_email[0].text.contains("we do not know your time zone"), "{}", di_email[0].text);

    // The queue hands the chunk out again, as SQS may: nothing is sent twice.
    let chunk = serde_json::json!({ "delivery_date": "2026-12-01", "subscriptions": [ana_coffee] });
    let again = JobMessage { task: NAME.into(), slot: utc("2026-11-30T00:00:00Z"), part: 0, payload: chunk };
    stack.runtime.queue.send_batch(&[serde_json::to_string(&again).unwrap()]).await.unwrap();
    let redelivered = stack.drain_totals().await;
    assert_eq!((redelivered.sent, redelivered.already_done), (0, 1), "{redelivered:?}");
    // A second invocation of the slot plans nothing.
    assert_eq!(stack.plan("2026-11-30T00:00:00Z").await.status, PlanStatus::AlreadyPlanned);
    assert_eq!(stack.drain_totals().await.sent, 0);
    assert_eq!(stack.mailer.sent().len(), 3);
}

/// What changed between the plan and the work gets no reminder, each counted with why.
async fn what_changed_after_the_plan_is_skipped_with_its_reason(backend: Backend) {
    let stack = stack(backend, "2026-11-30T00:00:04Z").await;
    let ids = customers(&stack, &["Europe/London"; 7]).await;
    let store = &stack.store;
    let tea = product(store, "Tea", 1_250, "USD").await;
    let gone = product(store, "Discontinued", 990, "EUR").await;
    let mut subscriptions = vec![];
    for (i, user) in ids.iter().enumerate() {
        let product = if i == 4 { gone } else { tea };
        subscriptions.push(subscribe(store, *user, product, 1, "weekly", "2026-12-01").await);
    }
    assert_eq!(stack.plan("2026-11-30T00:00:00Z").await.planned, 7);

    let s = &subscriptions;
    for change in [
        format!("UPDATE subscriptions SET status = 'paused' WHERE id = {}", s[1]),
        format!("UPDATE subscriptions SET status = 'cancelled' WHERE id = {}", s[2]),
        format!("UPDATE subscriptions SET next_delivery_date = '2026-12-08' WHERE id = {}", s[3]),
        format!("UPDATE products SET deleted_at = '2026-11-30T00:00:01Z' WHERE id = {gone}"),
        format!("UPDATE subscriptions SET quantity = 0 WHERE id = {}", s[5]),
        format!("DELETE FROM subscriptions WHERE id = {}", s[6]),
    ] {
        app_sql(store, &change).await;
    }
    let work = stack.drain_totals().await;
    assert_eq!(work.sent, 1, "{work:?}");
    let skipped: Vec<(&str, u64)> = work.skipped.iter().map(|(why, n)| (why.as_str(), *n)).collect();
    assert_eq!(
        skipped,
        [
            ("delivery moved to another date", 1),
            ("product no longer sold", 1),
            ("quantity not above zero", 1),
            ("subscription cancelled", 1),
            ("subscription deleted", 1),
            ("subscription paused", 1),
        ]
    );
    assert_eq!(stack.mailer.sent().len(), 1);
    assert_eq!(stack.mailer.sent()[0].to, "c0@example.com");
}

/// A slot planned late still reminds while its delivery is ahead, and reminds nothing once it was charged.
async fn a_late_reminder_goes_only_before_the_charge(backend: Backend) {
    let stack = stack(backend, "2026-11-30T23:00:00Z").await;
    let ids = customers(&stack, &["Asia/Kolkata"]).await;
    let tea = product(&stack.store, "Tea", 1_250, "USD").await;
    subscribe(&stack.store, ids[0], tea, 1, "weekly", "2026-12-01").await;
    subscribe(&stack.store, ids[0], tea, 3, "weekly", "2026-12-02").await;

    // Planned 23 hours late: the charge at 00:00 UTC is an hour away.
    assert_eq!(stack.plan("2026-11-30T00:00:00Z").await.planned, 1);
    assert_eq!(stack.drain_totals().await.sent, 1);
    // The next slot's plan is kept until past its delivery's charge: nothing goes, and it says why.
    stack.set_clock("2026-12-01T00:00:03Z");
    assert_eq!(stack.plan("2026-12-01T00:00:00Z").await.planned, 1);
    stack.set_clock("2026-12-02T00:00:00Z");
    let late = stack.drain_totals().await;
    assert_eq!(late.sent, 0, "{late:?}");
    assert_eq!(late.skipped.get("the delivery was charged before its reminder could go"), Some(&1), "{late:?}");
    assert_eq!(stack.mailer.sent().len(), 1);
}

/// A monthly subscription anchored on the 31st delivers on 28 February: reminded the day before, with the
/// delivery after it back on the 31st, its time across the change to summer time, east and west of UTC.
async fn a_month_end_anchor_is_reminded_on_the_short_months_last_day(backend: Backend) {
    let stack = stack(backend, "2027-02-26T00:00:04Z").await;
    let ids = customers(&stack, &["Europe/London", "America/New_York"]).await;
    let coffee = product(&stack.store, "Coffee beans", 129_900, "INR").await;
    for user in &ids {
        let id = subscribe(&stack.store, *user, coffee, 1, "monthly", "2027-01-31").await;
        // Processing delivered January's and moved it on, keeping the anchor.
        let sql = format!("UPDATE subscriptions SET next_delivery_date = '2027-02-28' WHERE id = {id}");
        app_sql(&stack.store, &sql).await;
    }
    assert_eq!(stack.plan("2027-02-26T00:00:00Z").await.planned, 0, "not due on the 27th");
    stack.set_clock("2027-02-27T00:00:04Z");
    assert_eq!(stack.plan("2027-02-27T00:00:00Z").await.planned, 2);
    assert_eq!(stack.drain_totals().await.sent, 2);

    let london = &sent_to(&stack, "c0@example.com")[0];
    assert!(london.subject.starts_with("Renewing Sunday 28 February at 00:00:"), "{}", london.subject);
    assert!(london.text.contains("the next one on Wednesday 31 March at 01:00"), "BST: {}", london.text);
    let new_york = &sent_to(&stack, "c1@example.com")[0];
    assert!(new_york.subject.starts_with("Renewing Saturday 27 February at 19:00:"), "{}", new_york.subject);
    assert!(new_york.text.contains("the next one on Tuesday 30 March at 20:00"), "EDT: {}", new_york.text);
}

/// The plan pages through a day's active subscriptions by id, and the work reads a chunk as it is now.
async fn the_store_pages_a_days_renewals_and_reads_them_as_they_are(backend: Backend) {
    let stack = stack(backend, "2026-11-30T00:00:04Z").await;
    let ids = customers(&stack, &["Europe/London"]).await;
    let store = &stack.store;
    let tea = product(store, "Tea", 1_250, "USD").await;
    let mut due = vec![];
    for _ in 0..5 {
        due.push(subscribe(store, ids[0], tea, 2, "weekly", "2026-12-01").await);
    }
    subscribe(store, ids[0], tea, 1, "weekly", "2026-12-02").await;
    app_sql(store, &format!("UPDATE subscriptions SET status = 'paused' WHERE id = {}", due[2])).await;
    let renewals = store.renewals();
    let day = "2026-12-01".parse().unwrap();
    assert_eq!(renewals.renewals_due(day, 0, 2).await.unwrap(), [due[0], due[1]]);
    assert_eq!(renewals.renewals_due(day, due[1], 2).await.unwrap(), [due[3], due[4]], "the paused one left out");
    assert!(renewals.renewals_due(day, due[4], 2).await.unwrap().is_empty());

    let read = renewals.renewals(&[due[2], due[0], 999_999]).await.unwrap();
    let seen: Vec<(i64, &str, i64, &str)> =
        read.iter().map(|r| (r.subscription_id, r.status.as_str(), r.amount_cents, r.currency.as_str())).collect();
    assert_eq!(seen, [(due[0], "active", 2_500, "USD"), (due[2], "paused", 2_500, "USD")], "ordered, unknown absent");
    assert_eq!(read[0].product.as_deref(), Some("Tea"));
    assert_eq!((read[0].frequency.as_str(), read[0].anchor_day), ("weekly", None));
}

integration_tests::on_both_stores!(
    reminds_tomorrows_deliveries_once_in_each_customers_zone,
    what_changed_after_the_plan_is_skipped_with_its_reason,
    a_late_reminder_goes_only_before_the_charge,
    a_month_end_anchor_is_reminded_on_the_short_months_last_day,
    the_store_pages_a_days_renewals_and_reads_them_as_they_are,
);
