//! Reads every function's schedules from template.yaml — the one source of truth for schedules — into
//! `$OUT_DIR/schedules.rs`, so the runtime compares `job_runs` with the schedule that is deployed.

use std::{fmt::Write, path::Path};

use serde_norway::Value;

fn main() {
    // Read when the script runs, not when it was compiled: a build script compiled for one checkout is reused
    // by another sharing its target dir, and must read that checkout's template.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let path = Path::new(&manifest_dir).join("../template.yaml");
    println!("cargo::rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let template: Value =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    let (mut functions, mut schedules) = (String::new(), String::new());
    // Each scheduled task is an entry of Mappings.Tasks, which the Fn::ForEach in Resources stamps into a
    // function, its schedule and its queues (tests/tests/template.rs checks the two lists agree).
    let tasks = template["Mappings"]["Tasks"].as_mapping().expect("template.yaml has Mappings.Tasks");
    for (id, task) in tasks {
        let id = id.as_str().unwrap_or_default();
        let name = text_of(&task["Name"], id, "Name");
        let expression = text_of(&task["Schedule"], id, "Schedule");
        let zone = text_of(&task["ScheduleTimezone"], id, "ScheduleTimezone");
        writeln!(functions, "    {name:?},").expect("writing to a String");
        writeln!(schedules, "    ({name:?}, {expression:?}, {zone:?}),").expect("writing to a String");
    }
    let out = format!(
        "/// The binary (task) of each scheduled function in template.yaml.\n\
         pub const FUNCTIONS: &[&str] = &[\n{functions}];\n\
         /// (task, expression, time zone) of each scheduled task in template.yaml.\n\
         pub const SCHEDULES: &[(&str, &str, &str)] = &[\n{schedules}];\n"
    );
    let target = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("schedules.rs");
    std::fs::write(&target, out).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}

fn text_of<'a>(value: &'a Value, id: &str, property: &str) -> &'a str {
    value.as_str().unwrap_or_else(|| panic!("template.yaml, Mappings.Tasks.{id}: {property} must be a literal string"))
}
