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
    let resources = template["Resources"].as_mapping().expect("template.yaml has Resources");
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap_or_default();
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} has no Metadata.BuildProperties.Binary naming its task"));
        writeln!(functions, "    {binary:?},").expect("writing to a String");
        let events = resource["Properties"]["Events"].as_mapping().into_iter().flatten();
        for (_, event) in events.filter(|(_, e)| e["Type"].as_str() == Some("ScheduleV2")) {
            let properties = &event["Properties"];
            let expression = text_of(&properties["ScheduleExpression"], id, "ScheduleExpression");
            let zone = text_of(&properties["ScheduleExpressionTimezone"], id, "ScheduleExpressionTimezone");
            writeln!(schedules, "    ({binary:?}, {expression:?}, {zone:?}),").expect("writing to a String");
        }
    }
    let out = format!(
        "/// The binary (task) of each function in template.yaml.\n\
         pub const FUNCTIONS: &[&str] = &[\n{functions}];\n\
         /// (task, expression, time zone) of each ScheduleV2 event in template.yaml.\n\
         pub const SCHEDULES: &[(&str, &str, &str)] = &[\n{schedules}];\n"
    );
    let target = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("schedules.rs");
    std::fs::write(&target, out).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}

fn text_of<'a>(value: &'a Value, id: &str, property: &str) -> &'a str {
    value.as_str().unwrap_or_else(|| panic!("{id}: a ScheduleV2 event's {property} must be a literal string"))
}
