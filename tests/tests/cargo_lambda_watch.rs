//! daily-summary under `cargo lambda watch`, the Lambda runtime emulator (cargo-lambda, from the venv), invoked
//! with `cargo lambda invoke` as a developer would: its database URL from Secrets Manager on moto (the deployed
//! configuration), SQS and SES on moto, PostgreSQL. The emulator builds the function as `sam build` does, from
//! the workspace's default members (the functions, without the embedded backend), for this machine.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use infra::{postgres::PgStore, sqs::SqsQueue};
use integration_tests::{db, moto::Moto};
use serde_json::{json, Value};
use shared::ports::{AppWriter, NewUser, NewWorkout, Queue};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// cargo-lambda from the venv `make venv` makes (or `CARGO_LAMBDA`).
fn cargo_lambda() -> PathBuf {
    let path = std::env::var_os("CARGO_LAMBDA").map_or_else(|| root().join(".venv/bin/cargo-lambda"), PathBuf::from);
    assert!(path.exists(), "{} is missing: run `make venv`", path.display());
    path
}

/// The emulator, stopped with every function process it started.
struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn invoke(port: u16, payload: &Value) -> Value {
    let file = std::env::temp_dir().join(format!("invoke-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, payload.to_string()).unwrap();
    let out = Command::new(cargo_lambda())
        .current_dir(root())
        .args(["lambda", "invoke", "daily-summary", "-A", "127.0.0.1", "-P", &port.to_string(), "-o", "json"])
        .arg("--data-file")
        .arg(&file)
        .output()
        .expect("running cargo lambda invoke");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn daily_summary_plans_and_mails_under_the_lambda_emulator() {
    let moto = Moto::start().await;
    let url = db::fresh_postgres_url().await;
    let store = PgStore::connect(&url).await.unwrap();
    let new_user = NewUser {
        name: "Ana".into(),
        email: "ana@example.com".into(),
        phone: None,
        time_zone: "Europe/London".into(),
        email_opt_in: true,
    };
    let ids = store.add_users(&[new_user]).await.unwrap();
    let workout = NewWorkout {
        user_id: ids[0],
        name: "Run".into(),
        started_at: "2026-11-22T08:00:00Z".parse().unwrap(),
        local_date: "2026-11-22".parse().unwrap(),
        duration_minutes: 30,
        calories: 300,
        sets: vec![],
    };
    store.add_workouts(&[workout]).await.unwrap();
    let (queue_url, dlq_url) = moto.create_queue_pair("daily-summary", 3, 360).await;
    moto.ses().await.verify_email_identity().email_address("jobs@example.com").send().await.unwrap();
    let secret = moto.secrets().await.create_secret().name("db").secret_string(&url).send().await.unwrap();

    let env = [
        ("DATABASE_URL_SECRET_ARN", secret.arn().unwrap()),
        ("QUEUE_URL", &queue_url),
        ("DEAD_LETTER_QUEUE_URL", &dlq_url),
        ("MAIL_FROM", "jobs@example.com"),
        ("AWS_ENDPOINT_URL", &moto.endpoint()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    let env_file = std::env::temp_dir().join(format!("watch-{}.env", uuid::Uuid::new_v4().simple()));
    std::fs::write(&env_file, env.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>()).unwrap();
    // The emulator builds the function (`cargo run --bin daily-summary` at the root) on the first invocation, and
    // that invocation's deadline counts the build: minutes from a clean clone on a busy machine. The same build
    // first, untimed, leaves the emulator nothing to compile.
    let build = Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "--manifest-path", "Cargo.toml", "--bin", "daily-summary"])
        .output()
        .expect("running cargo build");
    assert!(build.status.success(), "{}", String::from_utf8_lossy(&build.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log_path = std::env::temp_dir().join(format!("watch-{port}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new(cargo_lambda())
            .current_dir(root())
            .args(["lambda", "watch", "-A", "127.0.0.1", "-P", &port.to_string(), "--ignore-changes"])
            // The template's Timeout: the emulator's deadline is shorter than the runtime's margin otherwise.
            .args(["--timeout", "60"])
            .env("AWS_LAMBDA_FUNCTION_TIMEOUT", "60")
            .arg("--env-file")
            .arg(&env_file)
            // The tests' own variable would win over the secret's ARN.
            .env_remove("DATABASE_URL")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .expect("starting cargo lambda watch")
    };
    let _watch = Watch(child);
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        let said = || std::fs::read_to_string(&log_path).unwrap_or_default();
        assert!(started.elapsed() < Duration::from_secs(60), "cargo lambda watch did not listen on {port}: {}", said());
        std::thread::sleep(Duration::from_millis(200));
    }

    // The first invocation builds the function, then plans the slot of events/scheduled.json.
    let scheduled: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("events/scheduled.json")).unwrap()).unwrap();
    let plan = invoke(port, &scheduled);
    assert_eq!((plan["status"].as_str(), plan["planned"].as_u64()), (Some("planned"), Some(1)), "{plan}");

    let queue = SqsQueue::new(moto.sqs().await, queue_url.clone(), dlq_url);
    let received = queue.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(received.len(), 1);
    let batch = serde_json::to_value(shared::runtime::sqs_event(&received)).unwrap();
    assert_eq!(invoke(port, &batch), json!({"batchItemFailures": []}));
    let emails = moto.raw_emails().await;
    assert_eq!(emails.len(), 1);
    assert!(emails[0].contains("To: ana@example.com"), "{}", emails[0]);
}
