//! `jobs schedules --deployed` against EventBridge Scheduler on moto: the stack's schedules made as template.yaml
//! says are no drift (exit 0); one deleted, one changed by hand and one left over are each reported, and the
//! command exits non-zero.

use std::process::{Command, Output};

use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, Target};
use integration_tests::moto::Moto;

const STACK: &str = "jobs-prod";

fn jobs_schedules(moto: &Moto) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jobs"))
        .args(["schedules", "--deployed", "--stack", STACK])
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("running jobs")
}

async fn create(client: &aws_sdk_scheduler::Client, name: &str, task: &str, expression: &str, zone: &str) {
    let input = format!(r#"{{"task":"{task}","scheduledTime":"<aws.scheduler.scheduled-time>"}}"#);
    let target = Target::builder()
        .arn(format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"))
        .role_arn("arn:aws:iam::123456789012:role/scheduler")
        .input(input)
        .build()
        .unwrap();
    client
        .create_schedule()
        .name(name)
        .schedule_expression(expression)
        .schedule_expression_timezone(zone)
        .flexible_time_window(FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build().unwrap())
        .target(target)
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e:?}"));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn the_deployed_schedules_are_compared_with_the_template() {
    let moto = Moto::start().await;
    let client = aws_sdk_scheduler::Client::new(&moto.sdk_config().await);
    for task in shared::tasks::NAMES {
        let Some(schedule) = shared::tasks::schedule(task).unwrap() else { continue };
        let name = format!("{STACK}-{task}-Schedule-X1");
        create(&client, &name, task, schedule.expression(), schedule.zone().name()).await;
    }
    // Another stack's schedule is not this stack's business.
    create(&client, "other-stack-daily-summary", "daily-summary", "rate(5 minutes)", "UTC").await;
    let out = jobs_schedules(&moto);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("as template.yaml says"), "{}", text(&out.stdout));

    client.delete_schedule().name(format!("{STACK}-weekly-report-Schedule-X1")).send().await.unwrap();
    client.delete_schedule().name(format!("{STACK}-daily-summary-Schedule-X1")).send().await.unwrap();
    create(&client, &format!("{STACK}-daily-summary-Schedule-X1"), "daily-summary", "cron(0 6 * * ? *)", "UTC").await;
    create(&client, &format!("{STACK}-old-task-Schedule-X1"), "old-task", "cron(0 1 * * ? *)", "UTC").await;
    let out = jobs_schedules(&moto);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("missing    weekly-report"), "{stdout}");
    assert!(stdout.contains("different  daily-summary (jobs-prod-daily-summary-Schedule-X1): the expression is cron(0 6 * * ? *), template.yaml says cron(0 * * * ? *)"), "{stdout}");
    assert!(stdout.contains("extra      jobs-prod-old-task-Schedule-X1: fires old-task"), "{stdout}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        stderr.contains("3 differences between template.yaml and the schedules deployed for jobs-prod"),
        "{stderr}"
    );
}
