//! What the `jobs` command's tests share: the command on an embedded backend of the test's own folder, with none
//! of the developer's or CI's settings leaking in.

use std::{
    path::Path,
    process::{Command, Output},
};

/// `jobs ARGS` on `dir`: its SQLite database, outbox and uploads folder, the embedded queue and sample model.
pub fn jobs(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobs"))
        .args(args)
        .env("DATABASE_URL", format!("sqlite://{}", dir.join("jobs.db").display()))
        .env("OUTBOX_DIR", dir.join("outbox"))
        .env("UPLOADS_DIR", dir.join("uploads"))
        .env_remove("QUEUE_URL")
        .env_remove("FOOD_MODEL_URL")
        .env_remove("JOB_HISTORY_RETENTION_DAYS")
        .output()
        .expect("running jobs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
