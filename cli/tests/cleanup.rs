//! `jobs cleanup`: a retention a message could outlive is refused before anything is touched; a dry run counts.

mod common;

use common::{jobs, text};

#[test]
fn a_retention_shorter_than_a_redelivery_or_not_positive_is_refused_and_a_dry_run_counts() {
    let dir = std::env::temp_dir().join(format!("jobs-cleanup-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (days, why) in [("10", "shorter than the 54 days"), ("0", "every job's history"), ("-1", "every job's history")]
    {
        let out = jobs(&["cleanup", "--days", days], &dir);
        assert!(!out.status.success(), "--days {days} was accepted");
        assert!(text(&out.stderr).contains(why), "--days {days}: {}", text(&out.stderr));
    }
    let out = jobs(&["cleanup", "--days", "90", "--dry-run"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("would delete 0 runs, 0 run messages, 0 delivery keys and 0 on-demand requests"),
        "{}",
        text(&out.stdout)
    );
    let out = jobs(&["cleanup", "--days", "90"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("will not be planned or worked again"), "{}", text(&out.stdout));
    std::fs::remove_dir_all(&dir).unwrap();
}
