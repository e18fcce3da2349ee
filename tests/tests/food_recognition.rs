//! food-recognition, the first on-demand task, on both stores, with the real HTTP adapter talking to a scripted
//! stand-in for the provider: a photo becomes one food entry and a succeeded request however often its event
//! comes; the provider's throttling, outages and refusals are retried as it asks, or fail the request with a
//! reason a person can read; bad uploads fail without a call to the model. The runtime's request states are
//! checked on the stores directly; the S3 adapter and the key's rotation on moto.

use std::{path::PathBuf, sync::Arc, time::Duration};

use infra::{
    config::Secret,
    embedded_queue::EmbeddedQueue,
    food::{ApiKeySource, HttpRecognizer, LocalUploads, S3Photos, SAMPLES},
    wiring::Store,
};
use integration_tests::{
    db,
    http_stand_in::{Reply, StandIn},
    moto::Moto,
    nudges::Backend,
    on_both_stores,
};
use serde_json::{json, Value};
use shared::{
    limits::Pace,
    memory::{MemoryMailer, MemoryNotifier},
    ports::{FoodRecognizer, NewUser, Photos, Request, RequestOutcome, RequestRecord, RequestStart, RequestState},
    runtime::{JobRuntime, MessageOutcome, RuntimeSettings},
    tasks::{self, fitness::food_recognition::NAME, messages::Letterhead, Deps},
    time::{Clock, VirtualClock},
    Error,
};

const NOW: &str = "2026-12-01T12:30:00Z";
/// Receives before the queue dead-letters a message, in these tests.
const RECEIVES: u32 = 3;

struct FoodStack {
    runtime: JobRuntime,
    store: Store,
    uploads: LocalUploads,
    model: StandIn,
    clock: Arc<VirtualClock>,
    user: i64,
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("food-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn recognition(content: Value) -> String {
    json!({ "id": "chatcmpl-1", "choices": [{ "index": 0, "message": { "role": "assistant", "content": content.to_string() }, "finish_reason": "stop" }] })
        .to_string()
}

fn dal() -> String {
    recognition(json!({
        "is_food": true, "name": "Dal with rice", "calories": 540, "protein_g": 18.5, "carbs_g": 88, "fat_g": 11,
        "confidence": 0.82
    }))
}

fn photo() -> &'static [u8] {
    SAMPLES[0].bytes
}

impl FoodStack {
    async fn start(backend: Backend) -> FoodStack {
        Self::with_timeout(backend, Duration::from_secs(5)).await
    }

    async fn with_timeout(backend: Backend, timeout: Duration) -> FoodStack {
        let sqlite = db::fresh_sqlite().await;
        let queue_db = sqlite.db().clone();
        let store = match backend {
            Backend::Sqlite => Store::Sqlite(Arc::new(sqlite)),
            Backend::Postgres => Store::Postgres(Arc::new(db::fresh_postgres().await)),
        };
        let clock = Arc::new(VirtualClock::new(NOW.parse().unwrap()));
        let model = StandIn::start().await;
        let recognizer = HttpRecognizer::new(
            &format!("{}/v1", model.url),
            "vision-test",
            ApiKeySource::Value(Secret::new("sk-test")),
            timeout,
        )
        .unwrap();
        let dir = temp_dir();
        let letterhead = Letterhead { from: "coach@example.com".into(), signer: None, preferences: None };
        let deps = Deps {
            photos: Some(Arc::new(LocalUploads::new(&dir))),
            recognizer: Some(Arc::new(recognizer)),
            ..store.deps(Arc::new(MemoryMailer::default()), Arc::new(MemoryNotifier::default()), letterhead)
        };
        let runtime = JobRuntime {
            task: tasks::build(NAME, &deps).unwrap(),
            schedule: tasks::schedule(NAME).unwrap(),
            runs: store.runs(),
            ledger: store.ledger(),
            queue: Arc::new(EmbeddedQueue::new(queue_db, NAME, clock.clone(), RECEIVES)),
            clock: clock.clone(),
            pace: Pace::new(None),
            settings: RuntimeSettings { max_receive_count: RECEIVES, ..RuntimeSettings::default() },
        };
        let user = NewUser {
            name: "Asha".into(),
            email: "asha@example.com".into(),
            phone: None,
            time_zone: "Asia/Kolkata".into(),
            email_opt_in: true,
        };
        let user = store.writer().add_users(&[user]).await.unwrap()[0];
        FoodStack { runtime, store, uploads: LocalUploads::new(dir), model, clock, user }
    }

    /// Uploads `bytes` as the user's photo `upload`, as the app would: the file, and the bucket's event queued.
    async fn upload(&self, upload: &str, bytes: &[u8]) {
        self.uploads.put(&self.runtime.queue, self.user, upload, bytes, self.clock.now()).await.unwrap();
    }

    /// Works every visible message; each one's outcome, in order.
    async fn drain(&self) -> Vec<MessageOutcome> {
        let reports = self.runtime.drain().await.unwrap();
        reports.into_iter().flat_map(|r| r.messages.into_iter().map(|(_, o)| o)).collect()
    }

    async fn request(&self, id: &str) -> RequestRecord {
        self.store.runs().request(id).await.unwrap().unwrap_or_else(|| panic!("no request {id}"))
    }

    async fn entries(&self) -> Vec<shared::ports::FoodEntry> {
        self.store.food_log().food_entries(self.user, 10).await.unwrap()
    }

    async fn dead_letters(&self) -> Vec<String> {
        self.runtime.queue.peek_dead_letters(10).await.unwrap().into_iter().map(|d| d.reason).collect()
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(chrono::Duration::from_std(by).unwrap());
    }
}

async fn a_photo_becomes_one_food_entry_and_its_request_succeeds(backend: Backend) {
    let stack = FoodStack::start(backend).await;
    stack.model.reply(Reply::new(200, dal()));
    stack.upload("01JD-lunch.png", photo()).await;
    let outcomes = stack.drain().await;
    assert!(matches!(&outcomes[..], [MessageOutcome::Done { report }] if report.sent == 1), "{outcomes:?}");

    let entries = stack.entries().await;
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(
        (entry.upload_id.as_str(), entry.image_key.as_str()),
        ("01JD-lunch.png", &*format!("food/{}/01JD-lunch.png", stack.user))
    );
    assert_eq!(
        (entry.recognition.name.as_str(), entry.recognition.calories, entry.recognition.protein_g),
        ("Dal with rice", 540.0, 18.5)
    );

    let request = stack.request("01JD-lunch.png").await;
    assert_eq!(
        (request.state, request.attempts, request.kind.as_str(), request.user_id),
        (RequestState::Succeeded, 1, NAME, stack.user)
    );
    assert_eq!(request.result.as_ref().unwrap()["name"], "Dal with rice", "{request:?}");
    assert!(request.finished_at.is_some() && request.reason.is_none(), "{request:?}");

    // What the provider was sent: the model, the key, the photo as a data URL, and JSON asked for.
    let seen = stack.model.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].request_line, "POST /v1/chat/completions HTTP/1.1");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk-test"));
    let body: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!((&body["model"], &body["response_format"]["type"]), (&json!("vision-test"), &json!("json_object")));
    let url = body.pointer("/messages/1/content/1/image_url/url").and_then(Value::as_str).unwrap();
    assert!(url.starts_with("data:image/png;base64,iVBORw0KGgo"), "{}", &url[..40]);

    // Its hour's run counts the event and the entry.
    let run = stack.store.runs().run(NAME, "2026-12-01T12:00:00Z".parse().unwrap()).await.unwrap().unwrap();
    assert_eq!((run.messages, run.messages_done, run.sent, run.status.as_str()), (1, 1, 1, "done"), "{run:?}");
}

async fn a_redelivered_event_saves_nothing_twice_and_asks_the_model_once(backend: Backend) {
    let stack = FoodStack::start(backend).await;
    stack.model.reply(Reply::new(200, dal()));
    stack.upload("01JD-twice.png", photo()).await;
    stack.drain().await;
    // The bucket's event again (S3 and EventBridge deliver at least once), and the same upload written again.
    stack.upload("01JD-twice.png", photo()).await;
    let outcomes = stack.drain().await;
    assert!(
        matches!(&outcomes[..], [MessageOutcome::Done { report }] if report.sent == 0 && report.already_done == 1),
        "{outcomes:?}"
    );
    assert_eq!(stack.model.seen().len(), 1, "the model is asked once");
    assert_eq!(stack.entries().await.len(), 1);
    let request = stack.request("01JD-twice.png").await;
    assert_eq!((request.state, request.attempts), (RequestState::Succeeded, 1));
}

async fn a_rate_limit_with_retry_after_hides_the_event_that_long_then_it_succeeds(backend: Backend) {
    let stack = FoodStack::start(backend).await;
    let limited = r#"{"error": {"message": "Rate limit reached for requests", "type": "requests"}}"#;
    stack.model.reply(Reply::new(429, limited).header("Retry-After", "120"));
    stack.upload("01JD-busy.png", photo()).await;
    let outcomes = stack.drain().await;
    // The backoff of a first receive is 15 to 30 s: the provider's 120 s is later, so it is what counts.
    assert!(
        matches!(&outcomes[..], [MessageOutcome::Retry { delay_ms: 120_000, reason }] if reason.contains("rate limiting")),
        "{outcomes:?}"
    );
    let queued = stack.request("01JD-busy.png").await;
    assert_eq!(queued.state, RequestState::Queued);
    assert!(queued.reason.as_deref().unwrap().contains("Rate limit reached"), "{queued:?}");
    assert_eq!(queued.retry_at, Some(stack.clock.now() + chrono::Duration::seconds(120)));

    stack.advance(Duration::from_secs(119));
    assert!(stack.drain().await.is_empty(), "hidden until the provider's time");
    stack.advance(Duration::from_secs(2));
    stack.model.reply(Reply::new(200, dal()));
    let outcomes = stack.drain().await;
    assert!(matches!(&outcomes[..], [MessageOutcome::Done { .. }]), "{outcomes:?}");
    let request = stack.request("01JD-busy.png").await;
    assert_eq!((request.state, request.attempts, request.retry_at), (RequestState::Succeeded, 2, None));
}

async fn throttling_without_retry_after_and_outages_back_off_with_jitter(backend: Backend) {
    let stack = FoodStack::start(backend).await;
    stack.model.reply(Reply::new(429, "{}"));
    stack.upload("01JD-a.png", photo()).await;
    stack.model.reply(Reply::new(503, "upstream overloaded"));
    stack.upload("01JD-b.png", SAMPLES[1].bytes).await;
    stack.model.reply(Reply::new(500, r#"{"error": {"message": "internal error"}}"#));
    stack.upload("01JD-c.png", SAMPLES[2].bytes).await;
    let outcomes = stack.drain().await;
    assert_eq!(outcomes.len(), 3);
    for outcome in &outcomes {
        match outcome {
            MessageOutcome::Retry { delay_ms, .. } => assert!((15_000..=30_000).contains(delay_ms), "{outcome:?}"),
            other => panic!("{other:?}"),
        }
    }
    // The batch's messages are worked at once: which photo met which answer is the scheduler's choice.
    let mut reasons = vec![];
    for id in ["01JD-a.png", "01JD-b.png", "01JD-c.png"] {
        let request = stack.request(id).await;
        assert_eq!(request.state, RequestState::Queued, "{id}");
        reasons.push(request.reason.unwrap());
    }
    for why in ["rate limiting us (429)", "overloaded (503): upstream overloaded", "failed (500): internal error"] {
        assert!(reasons.iter().any(|r| r.contains(why)), "{why}: {reasons:?}");
    }
}

async fn an_outage_that_outlasts_the_retries_fails_the_request_and_a_redrive_runs_it_again(backend: Backend) {
    let stack = FoodStack::start(backend).await;
    stack.upload("01JD-down.png", photo()).await;
    for attempt in 1..=RECEIVES {
        stack.model.reply(Reply::new(502, "bad gateway"));
        let outcomes = stack.drain().await;
        assert_eq!(outcomes.len(), 1, "attempt {attempt}: {outcomes:?}");
        stack.advance(Duration::from_secs(15 * 60));
    }
    let failed = stack.request("01JD-down.png").await;
    assert_eq!((failed.state, failed.attempts), (RequestState::Failed, RECEIVES));
    let reason = failed.reason.unwrap();
    assert!(reason.starts_with("gave up after 3 attempts: the model's API failed (502)"), "{reason}");
    assert_eq!(stack.dead_letters().await, [reason]);

    // The operator redrives once the provider is back: the request runs again and succeeds.
    assert_eq!(stack.runtime.queue.redrive().await.unwrap(), 1);
    stack.model.reply(Reply::new(200, dal()));
    stack.drain().await;
    let request = stack.request("01JD-down.png").await;
    assert_eq!((request.state, request.attempts), (RequestState::Succeeded, RECEIVES + 1));
    assert_eq!(stack.entries().await.len(), 1);
}

async fn a_photo_the_provider_refuses_or_cannot_read_fails_for_good_with_a_reason_a_person_can_read(backend: Backend) {
    let stack = FoodStack::start(backend).await;
    let cases = [
        (
            "01JD-bad.png",
            Reply::new(400, r#"{"error": {"message": "Invalid image data", "code": "invalid_image"}}"#),
            "the model could not read the photo (400): Invalid image data",
        ),
        (
            "01JD-huge.png",
            Reply::new(413, "Request Entity Too Large"),
            "the model could not read the photo (413): Request Entity Too Large",
        ),
        (
            "01JD-prose.png",
            Reply::new(200, json!({"choices": [{"message": {"content": "It looks like a curry!"}}]}).to_string()),
            "the model's answer is not the JSON asked for",
        ),
        (
            "01JD-shoe.png",
            Reply::new(
                200,
                recognition(
                    json!({"is_food": false, "name": null, "calories": null, "protein_g": null, "carbs_g": null, "fat_g": null, "confidence": null}),
                ),
            ),
            "the photo does not show food",
        ),
    ];
    for (id, reply, _) in &cases {
        stack.model.reply(reply.clone());
        stack.upload(id, photo()).await;
        stack.drain().await;
    }
    for (id, _, why) in &cases {
        let request = stack.request(id).await;
        assert_eq!((request.state, request.attempts), (RequestState::Failed, 1), "{id}");
        assert!(request.reason.as_deref().unwrap().starts_with(why), "{id}: {request:?}");
    }
    // The users are told; no operator need act, so nothing is dead-lettered (its alarm stays quiet).
    assert!(stack.dead_letters().await.is_empty());
    // The same events again run nothing again.
    for (id, ..) in &cases {
        stack.upload(id, photo()).await;
    }
    let outcomes = stack.drain().await;
    assert!(
        outcomes.iter().all(|o| matches!(o, MessageOutcome::Done { report } if report.already_done == 1)),
        "{outcomes:?}"
    );
    assert_eq!(stack.model.seen().len(), 4);
    assert!(stack.entries().await.is_empty());
}

async fn bad_uploads_fail_with_a_clear_reason_and_no_call_to_the_model(backend: Backend) {
    let stack = FoodStack::start(backend).await;
    stack.upload("01JD-empty.jpg", b"").await;
    stack.upload("01JD-notes.jpg", b"shopping list: eggs, oats").await;
    let too_large = [&b"\x89PNG\r\n\x1a\n"[..], &vec![0u8; 5 * 1024 * 1024][..]].concat();
    stack.upload("01JD-panorama.png", &too_large).await;
    // A user the app deleted after the upload, and an object outside food/.
    let stranger = LocalUploads::event("food/999999/01JD-ghost.png", 10, stack.clock.now());
    let outside = LocalUploads::event("avatars/1/me.png", 10, stack.clock.now());
    stack.runtime.queue.send_batch(&[stranger.to_string(), outside.to_string()]).await.unwrap();
    stack.drain().await;

    assert!(stack.model.seen().is_empty(), "no call to the model");
    let reasons = [
        ("01JD-empty.jpg", "the photo is empty (0 bytes)"),
        ("01JD-notes.jpg", "the upload is not a photo: a JPEG, PNG, WebP or GIF image is expected"),
        ("01JD-panorama.png", "the photo is 5.1 MB; the largest accepted is 5.0 MB"),
        ("01JD-ghost.png", "user 999999 does not exist"),
    ];
    for (id, why) in reasons {
        let request = stack.request(id).await;
        assert_eq!(request.state, RequestState::Failed, "{id}");
        assert!(request.reason.as_deref().unwrap().starts_with(why), "{id}: {:?}", request.reason);
    }
    // Only what names no request is dead-lettered: the others' users are told why.
    let dead = stack.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("\"avatars/1/me.png\" is not a meal photo's key"), "{dead:?}");
    assert!(stack.store.runs().request("me.png").await.unwrap().is_none(), "no request for an object outside food/");
}

async fn a_model_slower_than_its_timeout_is_retried(backend: Backend) {
    let stack = FoodStack::with_timeout(backend, Duration::from_secs(1)).await;
    stack.model.reply(Reply::new(200, dal()).after(Duration::from_secs(3)));
    stack.upload("01JD-slow.png", photo()).await;
    let outcomes = stack.drain().await;
    assert!(
        matches!(&outcomes[..], [MessageOutcome::Retry { reason, .. }] if reason.contains("no answer from the model within 1 s")),
        "{outcomes:?}"
    );
    assert_eq!(stack.request("01JD-slow.png").await.state, RequestState::Queued);
}

async fn a_refused_key_stops_the_batch_and_raises_the_alarm(backend: Backend) {
    let stack = FoodStack::start(backend).await;
    // Refused, read again (the same key here), refused again.
    stack.model.reply(Reply::new(401, r#"{"error": {"message": "Incorrect API key provided"}}"#));
    stack.model.reply(Reply::new(401, r#"{"error": {"message": "Incorrect API key provided"}}"#));
    stack.upload("01JD-key.png", photo()).await;
    let reports = stack.runtime.drain().await.unwrap();
    let refused = reports[0].sender_refused.as_deref().unwrap();
    assert!(refused.contains("refused the API key (401)") && refused.contains("Incorrect API key"), "{refused}");
    assert_eq!(stack.model.seen().len(), 2, "one call, and one more with the key read again");
    let request = stack.request("01JD-key.png").await;
    assert_eq!(request.state, RequestState::Queued, "it comes back once the key is fixed: {request:?}");
}

/// A worker saved the entry and was killed before its request was marked succeeded: the event's next delivery,
/// once the dead worker's hold is over, finishes the request from the saved entry without asking the model.
async fn a_worker_killed_after_saving_is_finished_by_the_next_delivery_without_the_model(backend: Backend) {
    let stack = FoodStack::start(backend).await;
    let runs = stack.store.runs();
    let request = Request { id: "01JD-killed.png".into(), user_id: stack.user };
    let hold = Duration::from_secs(90);
    assert_eq!(runs.start_request(NAME, &request, stack.clock.now(), hold).await.unwrap(), RequestStart::Started(1));
    let entry = shared::ports::FoodEntry {
        upload_id: request.id.clone(),
        user_id: stack.user,
        image_key: format!("food/{}/01JD-killed.png", stack.user),
        recognition: shared::ports::Recognition {
            name: "Masala dosa".into(),
            calories: 390.0,
            protein_g: 8.0,
            carbs_g: 55.0,
            fat_g: 14.0,
            confidence: 0.7,
        },
        logged_at: stack.clock.now(),
    };
    let run = shared::ports::RunPart { slot: "2026-12-01T12:00:00Z".parse().unwrap(), part: 0 };
    stack.store.food_log().save_food_entry(&entry, NAME, run).await.unwrap();
    // The event comes back while the dead worker's hold lasts: it waits; after it, it finishes the request.
    stack.upload("01JD-killed.png", photo()).await;
    let outcomes = stack.drain().await;
    assert!(
        matches!(&outcomes[..], [MessageOutcome::Retry { reason, .. }] if reason.starts_with("held until")),
        "{outcomes:?}"
    );
    stack.advance(Duration::from_secs(120));
    let outcomes = stack.drain().await;
    assert!(matches!(&outcomes[..], [MessageOutcome::Done { report }] if report.already_done == 1), "{outcomes:?}");
    assert!(stack.model.seen().is_empty(), "the model is not asked again");
    let done = stack.request("01JD-killed.png").await;
    assert_eq!((done.state, done.attempts), (RequestState::Succeeded, 2));
    assert_eq!(done.result.unwrap()["name"], "Masala dosa");
    assert_eq!(stack.entries().await.len(), 1);
}

/// The runtime's bookkeeping of requests: one attempt at a time, a lost worker's taken over, a late outcome
/// of a taken-over attempt ignored, finished requests never run again unless they failed for want of tries.
async fn the_request_states_are_kept_by_attempt(backend: Backend) {
    let stack = FoodStack::start(backend).await;
    let runs = stack.store.runs();
    let now: chrono::DateTime<chrono::Utc> = NOW.parse().unwrap();
    let hold = Duration::from_secs(90);
    let request = Request { id: "r1".into(), user_id: stack.user };
    assert_eq!(runs.start_request(NAME, &request, now, hold).await.unwrap(), RequestStart::Started(1));
    let held = runs.start_request(NAME, &request, now + chrono::Duration::seconds(10), hold).await.unwrap();
    assert_eq!(held, RequestStart::Held(now + chrono::Duration::seconds(90)));
    // The first worker is lost: past its hold, a redelivery takes the request over.
    let later = now + chrono::Duration::seconds(91);
    assert_eq!(runs.start_request(NAME, &request, later, hold).await.unwrap(), RequestStart::Started(2));
    let late = RequestOutcome::Failed { reason: "late".into(), redrivable: false };
    assert!(!runs.finish_request("r1", 1, &late, later).await.unwrap(), "the lost worker's outcome is ignored");
    let retry_at = later + chrono::Duration::seconds(30);
    let queued = RequestOutcome::Queued { reason: "busy".into(), retry_at };
    assert!(runs.finish_request("r1", 2, &queued, later).await.unwrap());
    let record = runs.request("r1").await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.attempts, record.retry_at, record.held_until),
        (RequestState::Queued, 2, Some(retry_at), None)
    );
    assert_eq!(runs.start_request(NAME, &request, later, hold).await.unwrap(), RequestStart::Started(3));
    let gave_up = RequestOutcome::Failed { reason: "gave up".into(), redrivable: true };
    assert!(runs.finish_request("r1", 3, &gave_up, later).await.unwrap());
    assert_eq!(runs.start_request(NAME, &request, later, hold).await.unwrap(), RequestStart::Started(4), "redriven");
    assert!(runs.finish_request("r1", 4, &RequestOutcome::Succeeded(json!({"name": "Dal"})), later).await.unwrap());
    match runs.start_request(NAME, &request, later, hold).await.unwrap() {
        RequestStart::Finished(done) => {
            assert_eq!(
                (done.state, done.attempts, done.result),
                (RequestState::Succeeded, 4, Some(json!({"name": "Dal"})))
            )
        }
        other => panic!("{other:?}"),
    }
    // An id names one request: another user's or another kind's under it is refused.
    let other_user = Request { id: "r1".into(), user_id: stack.user + 1 };
    let e = runs.start_request(NAME, &other_user, later, hold).await.unwrap_err();
    assert!(matches!(&e, Error::Permanent(m) if m.contains("an id names one request")), "{e}");
    assert!(runs.start_request("other-task", &request, later, hold).await.is_err());
    // Newest first, per user.
    runs.start_request(NAME, &Request { id: "r2".into(), user_id: stack.user }, later, hold).await.unwrap();
    let ids: Vec<String> = runs.user_requests(stack.user, 10).await.unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["r2", "r1"]);
}

on_both_stores!(
    a_photo_becomes_one_food_entry_and_its_request_succeeds,
    a_redelivered_event_saves_nothing_twice_and_asks_the_model_once,
    a_rate_limit_with_retry_after_hides_the_event_that_long_then_it_succeeds,
    throttling_without_retry_after_and_outages_back_off_with_jitter,
    an_outage_that_outlasts_the_retries_fails_the_request_and_a_redrive_runs_it_again,
    a_photo_the_provider_refuses_or_cannot_read_fails_for_good_with_a_reason_a_person_can_read,
    bad_uploads_fail_with_a_clear_reason_and_no_call_to_the_model,
    a_model_slower_than_its_timeout_is_retried,
    a_refused_key_stops_the_batch_and_raises_the_alarm,
    a_worker_killed_after_saving_is_finished_by_the_next_delivery_without_the_model,
    the_request_states_are_kept_by_attempt,
);

#[tokio::test]
async fn the_s3_adapter_reads_a_photo_and_says_when_it_is_gone_or_too_large() {
    let moto = Moto::start().await;
    let s3 = moto.s3().await;
    s3.create_bucket().bucket("uploads").send().await.unwrap();
    s3.put_object().bucket("uploads").key("food/1/a.png").body(photo().to_vec().into()).send().await.unwrap();
    let photos = S3Photos::new(s3);
    assert_eq!(photos.photo("uploads", "food/1/a.png", 1 << 20).await.unwrap(), photo());
    let gone = photos.photo("uploads", "food/1/missing.png", 1 << 20).await.unwrap_err();
    assert!(matches!(&gone, Error::Permanent(m) if m.contains("no longer in the bucket")), "{gone}");
    let large = photos.photo("uploads", "food/1/a.png", 100).await.unwrap_err();
    assert!(matches!(&large, Error::Permanent(m) if m.contains("largest accepted is 100")), "{large}");
}

#[tokio::test]
async fn a_key_rotated_in_secrets_manager_is_read_again_when_the_provider_refuses_the_old_one() {
    let moto = Moto::start().await;
    let secrets = moto.secrets().await;
    let arn = secrets.create_secret().name("food-model-key").secret_string("sk-old").send().await.unwrap();
    let arn = arn.arn().unwrap().to_owned();
    let model = StandIn::start().await;
    let recognizer = HttpRecognizer::new(
        &model.url,
        "vision-test",
        ApiKeySource::Secret { client: secrets.clone(), arn: arn.clone() },
        Duration::from_secs(5),
    )
    .unwrap();
    let photo = shared::ports::Photo { bytes: photo().to_vec(), image_type: shared::ports::ImageType::Png };
    model.reply(Reply::new(200, dal()));
    recognizer.recognize(&photo).await.unwrap();
    // Rotated between two invocations: the provider refuses the old key, the new one is read once and works.
    secrets.put_secret_value().secret_id(&arn).secret_string("sk-new").send().await.unwrap();
    model.reply(Reply::new(401, r#"{"error": {"message": "Incorrect API key provided"}}"#));
    model.reply(Reply::new(200, dal()));
    assert_eq!(recognizer.recognize(&photo).await.unwrap().name, "Dal with rice");
    let keys: Vec<Option<String>> = model.seen().into_iter().map(|s| s.authorization).collect();
    let bearer = |k: &str| Some(format!("Bearer {k}"));
    assert_eq!(keys, [bearer("sk-old"), bearer("sk-old"), bearer("sk-new")]);
    // And it is kept: the next photo goes with the new key straight away.
    model.reply(Reply::new(200, dal()));
    recognizer.recognize(&photo).await.unwrap();
    assert_eq!(model.seen().last().unwrap().authorization, bearer("sk-new"));
}
