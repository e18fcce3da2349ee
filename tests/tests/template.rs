//! Checks of template.yaml that cfn-lint and `sam validate --lint` do not make: the runtime and build of every
//! function, the schedule expressions, the retry and dead-letter wiring of queues and events, and the alarms.
//! Each check is a function over the parsed template returning its problems; the real template must have none,
//! and every check is shown to catch a small broken template.

use std::{collections::BTreeSet, path::Path, time::Duration};

use integration_tests::template::parse;
use serde_json::{json, Map, Value};
use shared::tasks::maintenance::job_history_retention;

const FUNCTION: &str = "AWS::Serverless::Function";
const QUEUE: &str = "AWS::SQS::Queue";
const ALARM: &str = "AWS::CloudWatch::Alarm";
/// SAM's default when a function sets no Timeout.
const DEFAULT_TIMEOUT_SECS: u64 = 3;
/// SQS's default when a queue sets no VisibilityTimeout.
const DEFAULT_VISIBILITY_SECS: u64 = 30;

fn resources(t: &Value) -> impl Iterator<Item = (&str, &Value)> {
    t.get("Resources").and_then(Value::as_object).into_iter().flatten().map(|(id, r)| (id.as_str(), r))
}

fn resources_of<'a>(t: &'a Value, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
    resources(t).filter(move |(_, r)| r["Type"] == kind)
}

/// A function's properties with the template's `Globals.Function` under them, merged as SAM merges them: maps
/// key by key (a function's environment variables add to the global ones), anything else replaced.
fn function_properties(t: &Value, function: &Value) -> Map<String, Value> {
    fn merge(under: &mut Map<String, Value>, over: &Map<String, Value>) {
        for (key, value) in over {
            match (under.get_mut(key), value) {
                (Some(Value::Object(below)), Value::Object(above)) => merge(below, above),
                _ => {
                    under.insert(key.clone(), value.clone());
                }
            }
        }
    }
    let mut merged = t.pointer("/Globals/Function").and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(own) = function["Properties"].as_object() {
        merge(&mut merged, own);
    }
    merged
}

/// `(function id, event name, event properties)` of every event of the given type.
fn events_of<'a>(t: &'a Value, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a str, &'a Value)> + 'a {
    resources_of(t, FUNCTION).flat_map(move |(id, f)| {
        f.pointer("/Properties/Events")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(move |(_, e)| e["Type"] == kind)
            .map(move |(name, e)| (id, name.as_str(), &e["Properties"]))
    })
}

/// The logical id a `!Ref X` or `!GetAtt X.Attr` points at.
fn target(v: &Value) -> Option<&str> {
    v.get("Ref").and_then(Value::as_str).or_else(|| v.pointer("/Fn::GetAtt/0").and_then(Value::as_str))
}

/// An integer written literally (CloudFormation also takes numeric strings).
fn literal_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

// ---------------------------------------------------------------- checks

/// Every function runs the Rust binary of a crate under functions/: provided.al2023, arm64, Handler bootstrap,
/// built with cargo-lambda. `crates` are the package names found under functions/.
fn check_functions(t: &Value, crates: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, f) in resources_of(t, FUNCTION) {
        let p = function_properties(t, f);
        if p.get("Runtime") != Some(&json!("provided.al2023")) {
            problems.push(format!("{id}: Runtime is {}, not provided.al2023", shown(p.get("Runtime"))));
        }
        if p.get("Architectures") != Some(&json!(["arm64"])) {
            problems.push(format!("{id}: Architectures is {}, not [arm64]", shown(p.get("Architectures"))));
        }
        if p.get("Handler") != Some(&json!("bootstrap")) {
            problems.push(format!("{id}: Handler is {}, not bootstrap", shown(p.get("Handler"))));
        }
        let metadata = &f["Metadata"];
        if metadata["BuildMethod"] != "rust-cargolambda" {
            problems.push(format!("{id}: Metadata.BuildMethod is {}, not rust-cargolambda", metadata["BuildMethod"]));
        }
        match metadata.pointer("/BuildProperties/Binary").and_then(Value::as_str) {
            Some(binary) if crates.contains(binary) => {}
            Some(binary) => problems.push(format!("{id}: Binary {binary} names no crate under functions/")),
            None => problems.push(format!("{id}: Metadata.BuildProperties.Binary is missing")),
        }
    }
    problems
}

/// Every ScheduleV2 has an expression EventBridge Scheduler accepts, an explicit valid time zone, a retry
/// policy, a dead-letter queue, and an Input naming its own task with the scheduled time.
fn check_schedules(t: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, name, e) in events_of(t, "ScheduleV2") {
        let at = format!("{id}.{name}");
        match e["ScheduleExpression"].as_str() {
            Some(expr) => problems.extend(schedule_expression_problem(expr).map(|p| format!("{at}: {p}"))),
            None => problems.push(format!("{at}: ScheduleExpression is not a literal string")),
        }
        match e["ScheduleExpressionTimezone"].as_str() {
            None => problems.push(format!("{at}: no explicit ScheduleExpressionTimezone")),
            Some(zone) if zone.parse::<chrono_tz::Tz>().is_err() => {
                problems.push(format!("{at}: ScheduleExpressionTimezone {zone} is not an IANA zone"))
            }
            Some(_) => {}
        }
        if !e["RetryPolicy"].is_object() {
            problems.push(format!("{at}: no RetryPolicy"));
        }
        if e["DeadLetterConfig"].get("Arn").is_none() && e["DeadLetterConfig"].get("Type").is_none() {
            problems.push(format!("{at}: no DeadLetterConfig"));
        }
        let binary = t.pointer(&format!("/Resources/{id}/Metadata/BuildProperties/Binary")).and_then(Value::as_str);
        let input: Option<Value> = e["Input"].as_str().and_then(|s| serde_json::from_str(s).ok());
        match input {
            Some(input)
                if input["task"].as_str() == binary && input["scheduledTime"] == "<aws.scheduler.scheduled-time>" => {}
            _ => problems.push(format!(
                "{at}: Input is not the JSON {{\"task\":\"{}\",\"scheduledTime\":\"<aws.scheduler.scheduled-time>\"}}",
                binary.unwrap_or("<binary>")
            )),
        }
    }
    problems
}

/// What is wrong with a Scheduler expression, if anything: `cron` takes six fields (minutes hours
/// day-of-month month day-of-week year) with `?` in one of the two day fields; `rate` a positive value and
/// a unit agreeing with it; `at` a local date-time.
fn schedule_expression_problem(expr: &str) -> Option<String> {
    let inner = |prefix: &str| expr.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(')'));
    if let Some(fields) = inner("cron(") {
        let fields: Vec<&str> = fields.split_whitespace().collect();
        if fields.len() != 6 {
            return Some(format!("{expr} has {} fields; Scheduler's cron takes 6", fields.len()));
        }
        if (fields[2] == "?") == (fields[4] == "?") {
            return Some(format!("{expr}: exactly one of day-of-month and day-of-week must be ?"));
        }
        None
    } else if let Some(rate) = inner("rate(") {
        let (value, unit) = rate.split_once(' ').unwrap_or((rate, ""));
        match value.parse::<u32>() {
            Ok(0) | Err(_) => Some(format!("{expr}: the rate is not a positive integer")),
            Ok(1) if ["minute", "hour", "day"].contains(&unit) => None,
            Ok(n) if n > 1 && ["minutes", "hours", "days"].contains(&unit) => None,
            Ok(_) => Some(format!("{expr}: unit {unit:?} does not agree with the value")),
        }
    } else if let Some(when) = inner("at(") {
        match chrono::NaiveDateTime::parse_from_str(when, "%Y-%m-%dT%H:%M:%S") {
            Ok(_) => None,
            Err(_) => Some(format!("{expr}: not at(yyyy-mm-ddThh:mm:ss)")),
        }
    } else {
        Some(format!("{expr} is neither cron(...), rate(...) nor at(...)"))
    }
}

/// Every queue is encrypted and, if it has a redrive policy, retries 2 to 10 times; a queue a function consumes
/// has a redrive policy and hides a message for at least six times the function's timeout (AWS's advice, so
/// a message is not redelivered while a batch holding it may still run).
fn check_queues(t: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, q) in resources_of(t, QUEUE) {
        let p = &q["Properties"];
        if p["SqsManagedSseEnabled"] != true && p.get("KmsMasterKeyId").is_none() {
            problems.push(format!("{id}: not encrypted (SqsManagedSseEnabled or KmsMasterKeyId)"));
        }
        // Job-history retention counts on how long a message can wait in a queue (module doc, rule 2).
        let (longest, kind) = match p.get("RedrivePolicy") {
            Some(_) => (job_history_retention::QUEUE_RETENTION, "a task's queue"),
            None => (job_history_retention::DEAD_LETTER_RETENTION, "a dead-letter queue"),
        };
        match p.get("MessageRetentionPeriod").map_or(Some(4 * 24 * 3600), literal_u64) {
            Some(secs) if secs as i64 <= longest.num_seconds() => {}
            other => problems.push(format!(
                "{id}: MessageRetentionPeriod {other:?} is longer than job-history retention allows for {kind} \
                 ({longest})"
            )),
        }
        if let Some(redrive) = p.get("RedrivePolicy") {
            match redrive.get("maxReceiveCount").and_then(literal_u64) {
                Some(n) if (2..=10).contains(&n) => {}
                other => problems.push(format!(
                    "{id}: RedrivePolicy maxReceiveCount is {}, not 2 to 10",
                    other.map_or("missing".to_string(), |n| n.to_string())
                )),
            }
        }
    }
    for (function, name, e) in events_of(t, "SQS") {
        let Some(queue_id) = target(&e["Queue"]) else {
            problems.push(format!("{function}.{name}: Queue is not a !GetAtt of a queue in this template"));
            continue;
        };
        let queue = &t["Resources"][queue_id]["Properties"];
        if queue.get("RedrivePolicy").is_none() {
            problems.push(format!("{queue_id}: feeds {function} but has no RedrivePolicy"));
        }
        let props = function_properties(t, &t["Resources"][function]);
        let timeout = props.get("Timeout").map_or(Some(DEFAULT_TIMEOUT_SECS), literal_u64);
        let visibility = queue.get("VisibilityTimeout").map_or(Some(DEFAULT_VISIBILITY_SECS), literal_u64);
        let receives = queue.pointer("/RedrivePolicy/maxReceiveCount").and_then(literal_u64);
        // The runtime fails an on-demand request on its last receive: it must know which that is (5 unless told).
        let told = props.get("Environment").and_then(|e| e.pointer("/Variables/MAX_RECEIVE_COUNT"));
        let told_count = told.map_or(Some(5), |v| v.as_str().and_then(|n| n.parse::<u64>().ok()));
        if told_count != receives {
            problems.push(format!(
                "{function}: MAX_RECEIVE_COUNT {} is not {queue_id}'s maxReceiveCount {}",
                told.map_or("(unset: 5)".to_string(), |v| shown(Some(v))),
                shown(queue.pointer("/RedrivePolicy/maxReceiveCount"))
            ));
        }
        if let (Some(timeout), Some(visibility), Some(receives)) = (timeout, visibility, receives) {
            let settings = shared::runtime::RuntimeSettings::default();
            let (timeout, visibility) = (Duration::from_secs(timeout), Duration::from_secs(visibility));
            if let Err(why) = settings.check_queue(timeout, visibility, receives as u32) {
                problems.push(format!("{queue_id}: {why}"));
            }
        }
        match (timeout, visibility) {
            (Some(timeout), Some(visibility)) if visibility >= 6 * timeout => {}
            (Some(timeout), Some(visibility)) => problems.push(format!(
                "{queue_id}: VisibilityTimeout {visibility}s is under 6 x {function}'s Timeout {timeout}s"
            )),
            _ => problems.push(format!("{queue_id}: VisibilityTimeout or {function}'s Timeout is not a literal")),
        }
    }
    problems
}

/// Every SQS event reports partial batch failures and bounds how many functions it runs at once.
fn check_sqs_events(t: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (function, name, e) in events_of(t, "SQS") {
        let at = format!("{function}.{name}");
        let types = e["FunctionResponseTypes"].as_array().into_iter().flatten();
        if !types.into_iter().any(|v| v == "ReportBatchItemFailures") {
            problems.push(format!("{at}: FunctionResponseTypes lacks ReportBatchItemFailures"));
        }
        let maximum = e.pointer("/ScalingConfig/MaximumConcurrency").and_then(literal_u64);
        match maximum {
            Some(n) if (2..=1000).contains(&n) => {}
            _ => problems.push(format!("{at}: no ScalingConfig.MaximumConcurrency between 2 and 1000")),
        }
        // Each instance paces its sends to its share of the account's rate: the share must be the real one.
        let props = function_properties(t, &t["Resources"][function]);
        let told = props.get("Environment").and_then(|e| e.pointer("/Variables/MAX_CONCURRENCY"));
        if told.and_then(Value::as_str).and_then(|n| n.parse::<u64>().ok()) != maximum {
            problems.push(format!("{function}: MAX_CONCURRENCY {} is not {at}'s MaximumConcurrency", shown(told)));
        }
    }
    problems
}

/// Every dead-letter queue (a redrive target, an event's DeadLetterConfig, or a function's destination for
/// failed asynchronous invocations) has an alarm on its depth, and
/// every function one on its Errors.
fn check_alarms(t: &Value) -> Vec<String> {
    let alarms: Vec<&Value> = resources_of(t, ALARM).map(|(_, a)| &a["Properties"]).collect();
    let watched = |namespace: &str, metric: &str, dimension: &str, id: &str| {
        alarms.iter().any(|a| {
            a["Namespace"] == namespace
                && a["MetricName"] == metric
                && a["Dimensions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| d["Name"] == dimension && target(&d["Value"]) == Some(id))
        })
    };
    let mut dead_letter_queues: BTreeSet<String> = BTreeSet::new();
    for (_, q) in resources_of(t, QUEUE) {
        let redrive = q.pointer("/Properties/RedrivePolicy/deadLetterTargetArn").and_then(target);
        dead_letter_queues.extend(redrive.map(str::to_string));
    }
    for (_, f) in resources_of(t, FUNCTION) {
        for e in f.pointer("/Properties/Events").and_then(Value::as_object).into_iter().flatten().map(|(_, e)| e) {
            let dead_letters = e.pointer("/Properties/DeadLetterConfig/Arn").and_then(target);
            dead_letter_queues.extend(dead_letters.map(str::to_string));
        }
        let failures = function_properties(t, f).get("EventInvokeConfig").cloned().unwrap_or_default();
        let destination = failures.pointer("/DestinationConfig/OnFailure/Destination").and_then(target);
        dead_letter_queues.extend(destination.map(str::to_string));
    }
    let mut problems: Vec<String> = dead_letter_queues
        .into_iter()
        .filter(|dlq| !watched("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq))
        .map(|dlq| format!("{dlq}: a dead-letter queue with no ApproximateNumberOfMessagesVisible alarm"))
        .collect();
    for (id, f) in resources_of(t, FUNCTION) {
        if !watched("AWS/Lambda", "Errors", "FunctionName", id) {
            problems.push(format!("{id}: no alarm on its Errors"));
        }
        // Functions that send (those fed by a queue) stop on SES refusing them: someone must be told.
        if f.pointer("/Properties/Events")
            .and_then(Value::as_object)
            .is_none_or(|events| !events.values().any(|e| e["Type"] == "SQS"))
        {
            continue;
        }
        let task = f.pointer("/Metadata/BuildProperties/Binary").and_then(Value::as_str).unwrap_or_default();
        let refused = alarms.iter().any(|a| {
            a["Namespace"] == "Jobs"
                && a["MetricName"] == "SenderRefused"
                && a["Dimensions"].as_array().into_iter().flatten().any(|d| d["Name"] == "Task" && d["Value"] == task)
        });
        if !refused {
            problems.push(format!("{id}: no alarm on its task's Jobs/SenderRefused metric"));
        }
    }
    problems
}

fn all_problems(t: &Value, crates: &BTreeSet<String>) -> Vec<String> {
    [check_functions(t, crates), check_schedules(t), check_queues(t), check_sqs_events(t), check_alarms(t)].concat()
}

// ---------------------------------------------------------------- permissions

/// What a function's code calls beyond its own queues, its log group and the database secret, which every
/// function gets: the AWS permissions it needs, and so the only ones it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Capability {
    /// SES: GetSendQuota (its pace) and SendRawEmail as MAIL_FROM through the configuration set.
    Email,
    /// SNS Publish: SMS and mobile push.
    Notify,
    /// The unsubscribe links' key: the tasks that sign links in marketing emails, and the function verifying them.
    LinkKey,
    /// EventBridge PutEvents on the shop's bus.
    Bus,
    /// S3 GetObject of the meal photos.
    Photos,
    /// The vision model's API key.
    ModelKey,
}

use Capability::{Bus, Email, LinkKey, ModelKey, Notify, Photos};

/// Each function's capabilities, as its code has them: infra/src/wiring.rs builds the adapters a task is given
/// (shared/src/tasks/mod.rs) and each task's module shows which it uses. The shop's emails (renewal reminders,
/// order notifications) are transactional: no unsubscribe link, so no key. Cleanups, retention, analytics send
/// nothing; mail-feedback only writes the database.
const CAPABILITIES: &[(&str, &[Capability])] = &[
    ("daily-summary", &[Email, LinkKey]),
    ("weekly-report", &[Email, LinkKey]),
    ("monthly-report", &[Email, LinkKey]),
    ("inactivity-reminders", &[Email, Notify, LinkKey]),
    ("challenge-notifications", &[Email, Notify, LinkKey]),
    ("subscription-processing", &[Bus]),
    ("renewal-reminders", &[Email]),
    ("order-notifications", &[Email, Notify]),
    ("job-history-retention", &[]),
    ("cart-cleanup", &[]),
    ("token-cleanup", &[]),
    ("audit-log-retention", &[]),
    ("session-cleanup", &[]),
    ("temp-data-cleanup", &[]),
    ("leaderboards", &[]),
    ("trending", &[]),
    ("user-stats", &[]),
    ("food-recognition", &[Photos, ModelKey]),
    ("unsubscribe", &[LinkKey]),
    ("mail-feedback", &[]),
];

/// The only actions a function may be granted on every resource ("*"), each because no narrower one exists:
/// GetSendQuota is an account's quota and takes no resource; an SMS goes to a phone number, which has no ARN
/// (push endpoints do, but one statement serves both); the EC2 actions Lambda calls to give a function in a VPC
/// its network interfaces support only "*" (Describe*) or name interfaces that do not exist yet. No CloudWatch
/// permission at all: the runtime's metrics are log lines (embedded metric format).
const WILDCARD_ACTIONS: &[&str] = &[
    "ses:GetSendQuota",
    "sns:Publish",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
];

/// One Allow statement reaching a function's role: from the role's own policies, a managed policy of the
/// template it names, or a policy resource attached to it.
#[derive(Debug)]
struct Grant {
    from: String,
    actions: Vec<String>,
    resources: Vec<Value>,
}

impl Grant {
    fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action)
    }

    fn on(&self, id: &str) -> bool {
        self.resources.iter().any(|r| target(r) == Some(id))
    }
}

/// The logical id of the role a function runs with, when it names one of the template's.
fn role_of<'a>(t: &'a Value, function: &'a Value) -> Option<&'a str> {
    function.pointer("/Properties/Role").and_then(target).filter(|id| t["Resources"][id]["Type"] == "AWS::IAM::Role")
}

/// Whether a condition of the template holds, when it can be known without the parameters' values: an
/// `Fn::Equals` of two literals (a task's capability flag against "1"). `None` for one hanging on parameters.
fn condition_holds(t: &Value, name: &str) -> Option<bool> {
    match t.pointer(&format!("/Conditions/{name}/Fn::Equals")).and_then(Value::as_array).map(Vec::as_slice) {
        Some([Value::String(a), Value::String(b)]) => Some(a == b),
        _ => None,
    }
}

/// Every Allow statement that may reach the function's role: those on a condition known to be false left out,
/// those on a parameter's condition (a VPC, a KMS key) kept.
fn grants(t: &Value, function_id: &str) -> Vec<Grant> {
    let Some(role) = role_of(t, &t["Resources"][function_id]) else { return vec![] };
    let mut documents: Vec<(String, Option<String>, &Value)> = vec![];
    let role_properties = &t["Resources"][role]["Properties"];
    for policy in role_properties["Policies"].as_array().into_iter().flatten() {
        documents.push((format!("{role}.{}", policy["PolicyName"]), None, &policy["PolicyDocument"]));
    }
    for arn in role_properties["ManagedPolicyArns"].as_array().into_iter().flatten() {
        if let Some(policy) = target(arn) {
            let condition = t["Resources"][policy]["Condition"].as_str().map(str::to_string);
            documents.push((policy.to_string(), condition, &t["Resources"][policy]["Properties"]["PolicyDocument"]));
        }
    }
    for (id, policy) in
        resources(t).filter(|(_, r)| r["Type"] == "AWS::IAM::RolePolicy" || r["Type"] == "AWS::IAM::Policy")
    {
        let p = &policy["Properties"];
        let names_role = target(&p["RoleName"]) == Some(role)
            || p["Roles"].as_array().into_iter().flatten().any(|r| target(r) == Some(role));
        if names_role {
            documents.push((id.to_string(), policy["Condition"].as_str().map(str::to_string), &p["PolicyDocument"]));
        }
    }
    let list = |v: &Value| -> Vec<Value> {
        match v {
            Value::Array(items) => items.clone(),
            Value::Null => vec![],
            other => vec![other.clone()],
        }
    };
    let mut found = vec![];
    for (from, condition, document) in documents {
        for statement in list(&document["Statement"]) {
            let (condition, statement) = match statement.get("Fn::If").and_then(Value::as_array) {
                Some(branches) => (branches[0].as_str().map(str::to_string), branches[1].clone()),
                None => (condition.clone(), statement),
            };
            if statement["Effect"] != "Allow" || condition.as_deref().and_then(|c| condition_holds(t, c)) == Some(false)
            {
                continue;
            }
            let actions = list(&statement["Action"]).iter().filter_map(Value::as_str).map(str::to_string).collect();
            found.push(Grant { from: from.clone(), actions, resources: list(&statement["Resource"]) });
        }
    }
    found
}

/// A function's own environment variable (its Globals' under it), when set to something other than "".
fn env<'a>(props: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    props.get("Environment").and_then(|e| e.pointer(&format!("/Variables/{name}"))).filter(|v| *v != "")
}

/// Every function runs with a role of its own made in the template (so SAM attaches no managed policy, such
/// as AWSLambdaSQSQueueExecutionRole on every queue), which names no AWS managed policy, may read the database
/// secret, and is granted "*" only for the actions in WILDCARD_ACTIONS, and no action by wildcard.
fn check_roles(t: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, f) in resources_of(t, FUNCTION) {
        let Some(role) = role_of(t, f) else {
            problems.push(format!("{id}: no Role of its own in the template; SAM would attach managed policies"));
            continue;
        };
        if f.pointer("/Properties/Policies").is_some() {
            problems.push(format!("{id}: Policies beside a Role (SAM ignores them)"));
        }
        for arn in t["Resources"][role]
            .pointer("/Properties/ManagedPolicyArns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if target(arn).is_none() {
                problems.push(format!("{role}: names the managed policy {arn}, not one of the template's"));
            }
        }
        let grants = grants(t, id);
        if !grants.iter().any(|g| g.allows("secretsmanager:GetSecretValue") && g.on("DatabaseSecretArn")) {
            problems.push(format!("{id}: may not read the database secret (DatabaseSecretArn)"));
        }
        for g in &grants {
            for action in g.actions.iter().filter(|a| a.contains('*')) {
                problems.push(format!("{id}: {} grants {action} by wildcard", g.from));
            }
            if g.resources.iter().any(|r| r == "*") {
                for action in g.actions.iter().filter(|a| !WILDCARD_ACTIONS.contains(&a.as_str())) {
                    problems.push(format!("{id}: {} grants {action} on \"*\"", g.from));
                }
            }
        }
    }
    problems
}

/// Each function is granted exactly the capabilities its code has (`capabilities`, by binary), and the settings
/// that go with them: a sender is told the configuration set its SendRawEmail may use; a function with an
/// unsubscribe URL may read the links' key.
fn check_capabilities(t: &Value, capabilities: &[(&str, &[Capability])]) -> Vec<String> {
    let mut problems = Vec::new();
    let configuration_sets: Vec<&str> = resources_of(t, "AWS::SES::ConfigurationSet").map(|(id, _)| id).collect();
    for (id, f) in resources_of(t, FUNCTION) {
        let binary = f.pointer("/Metadata/BuildProperties/Binary").and_then(Value::as_str).unwrap_or_default();
        let Some((_, needed)) = capabilities.iter().find(|(name, _)| *name == binary) else {
            problems.push(format!("{id}: {binary} has no capabilities listed in CAPABILITIES"));
            continue;
        };
        let grants = grants(t, id);
        let has = |c: Capability| match c {
            Email => grants.iter().any(|g| g.allows("ses:SendRawEmail") || g.allows("ses:GetSendQuota")),
            Notify => grants.iter().any(|g| g.allows("sns:Publish")),
            LinkKey => grants.iter().any(|g| g.allows("secretsmanager:GetSecretValue") && g.on("UnsubscribeKey")),
            Bus => grants.iter().any(|g| g.allows("events:PutEvents")),
            Photos => grants.iter().any(|g| g.actions.iter().any(|a| a.starts_with("s3:"))),
            ModelKey => grants.iter().any(|g| g.allows("secretsmanager:GetSecretValue") && g.on("FoodModelApiKey")),
        };
        for c in [Email, Notify, LinkKey, Bus, Photos, ModelKey] {
            match (needed.contains(&c), has(c)) {
                (true, false) => problems.push(format!("{id}: its code uses {c:?} but its role is not granted it")),
                (false, true) => problems.push(format!("{id}: granted {c:?}, which its code does not use")),
                _ => {}
            }
        }
        let props = function_properties(t, f);
        let told = env(&props, "MAIL_CONFIGURATION_SET").and_then(target);
        match (needed.contains(&Email), told) {
            (true, Some(set)) if configuration_sets.contains(&set) => {}
            (true, _) => problems
                .push(format!("{id}: sends email without MAIL_CONFIGURATION_SET (a !Ref of the configuration set)")),
            (false, Some(_)) => {
                problems.push(format!("{id}: MAIL_CONFIGURATION_SET set on a function that sends no email"))
            }
            (false, None) => {}
        }
        for g in grants.iter().filter(|g| g.allows("ses:SendRawEmail")) {
            if !g.resources.iter().any(|r| r.to_string().contains(":configuration-set/")) {
                problems.push(format!("{id}: {} allows SendRawEmail without the configuration set's ARN", g.from));
            }
        }
        if env(&props, "UNSUBSCRIBE_URL").is_some() && !needed.contains(&LinkKey) {
            problems.push(format!("{id}: UNSUBSCRIBE_URL set, so it reads the links' key, which it is not granted"));
        }
    }
    problems
}

/// A function's SQS and logs permissions name its own resources only: it consumes its event source's queue,
/// sends to that queue, its dead-letter queue and its failure destination, and writes its own log group.
fn check_own_resources(t: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for (id, f) in resources_of(t, FUNCTION) {
        let props = function_properties(t, f);
        let consumed: BTreeSet<&str> =
            events_of(t, "SQS").filter(|(f, ..)| *f == id).filter_map(|(.., e)| target(&e["Queue"])).collect();
        let mut sent_to = consumed.clone();
        for queue in &consumed {
            sent_to.extend(
                t["Resources"][queue].pointer("/Properties/RedrivePolicy/deadLetterTargetArn").and_then(target),
            );
        }
        sent_to.extend(
            props
                .get("EventInvokeConfig")
                .and_then(|c| c.pointer("/DestinationConfig/OnFailure/Destination"))
                .and_then(target),
        );
        let log_group = props.get("LoggingConfig").and_then(|l| l.get("LogGroup")).and_then(target);
        for g in grants(t, id) {
            let named: Vec<&Value> = g.resources.iter().collect();
            for action in &g.actions {
                let allowed: Option<BTreeSet<&str>> = match action.as_str() {
                    "sqs:SendMessage" => Some(sent_to.clone()),
                    a if a.starts_with("sqs:") => Some(consumed.clone()),
                    a if a.starts_with("logs:") => Some(log_group.into_iter().collect()),
                    _ => None,
                };
                let Some(allowed) = allowed else { continue };
                for r in &named {
                    if !target(r).is_some_and(|r| allowed.contains(r)) {
                        problems.push(format!("{id}: {} grants {action} on {r}, not its own", g.from));
                    }
                }
            }
        }
    }
    problems
}

fn permission_problems(t: &Value, capabilities: &[(&str, &[Capability])]) -> Vec<String> {
    [check_roles(t), check_capabilities(t, capabilities), check_own_resources(t)].concat()
}

fn shown(v: Option<&Value>) -> String {
    v.map_or("missing".to_string(), Value::to_string)
}

// ---------------------------------------------------------------- the real template

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace")
}

/// Package names of the crates under functions/ whose folder, package and binary share one name.
fn function_crates() -> BTreeSet<String> {
    let dir = workspace_root().join("functions");
    std::fs::read_dir(&dir)
        .expect("functions/ exists")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let manifest = std::fs::read_to_string(path.join("Cargo.toml")).ok()?;
            let folder = path.file_name()?.to_str()?.to_string();
            let declares_name = manifest.lines().any(|l| l.replace(' ', "") == format!("name=\"{folder}\""));
            declares_name.then_some(folder)
        })
        .collect()
}

fn real_template() -> Value {
    integration_tests::template::real()
}

#[test]
fn the_real_template_passes_every_check() {
    let crates = function_crates();
    assert!(crates.contains("daily-summary"), "functions/daily-summary not found: {crates:?}");
    let t = real_template();
    assert!(resources_of(&t, FUNCTION).count() >= 1, "no function in template.yaml");
    assert_eq!(all_problems(&t, &crates), Vec::<String>::new());
}

/// The packages `default-members` of the workspace's Cargo.toml lists, by folder name.
fn default_members() -> BTreeSet<String> {
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let list = manifest.split_once("\ndefault-members = [").expect("Cargo.toml lists default-members").1;
    let list = list.split_once(']').expect("default-members ends").0;
    list.split(',').filter_map(|m| m.trim().trim_matches('"').strip_prefix("functions/")).map(String::from).collect()
}

/// `sam build` runs `cargo lambda build --release --bin <Binary>` in the function's CodeUri: from the root, cargo
/// finds the binary among the default members and unifies their features; from a function's own folder, it
/// builds that package alone. Either way the build finds the binary, and a function with features of its own
/// (built from its folder) does not lend them to the others.
#[test]
fn sam_build_finds_every_function_and_builds_it_with_only_its_own_features() {
    let (t, members) = (real_template(), default_members());
    let mut problems = Vec::new();
    for (id, f) in resources_of(&t, FUNCTION) {
        let binary = f.pointer("/Metadata/BuildProperties/Binary").and_then(Value::as_str).unwrap_or_default();
        match function_properties(&t, f).get("CodeUri").and_then(Value::as_str) {
            Some(".") if !members.contains(binary) => {
                problems.push(format!("{id}: built from the root, but {binary} is not in default-members"))
            }
            Some(".") => {}
            Some(own) if own == format!("functions/{binary}") && !members.contains(binary) => {}
            Some(own) => {
                problems.push(format!("{id}: CodeUri {own} is neither . nor functions/{binary} (not a default member)"))
            }
            None => problems.push(format!("{id}: no CodeUri")),
        }
    }
    assert_eq!(problems, Vec::<String>::new());
    assert!(members.contains("daily-summary") && !members.contains("food-recognition"), "{members:?}");
}

#[test]
fn every_function_of_the_real_template_has_exactly_the_permissions_its_code_needs() {
    let t = real_template();
    assert_eq!(permission_problems(&t, CAPABILITIES), Vec::<String>::new());
    let listed: BTreeSet<String> = CAPABILITIES.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(listed, function_crates(), "CAPABILITIES lists other functions than there are");
}

#[test]
fn the_task_loops_capability_flags_say_what_capabilities_say() {
    let t = parse(&std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap());
    for (stem, task) in t["Mappings"]["Tasks"].as_object().unwrap() {
        let name = task["Name"].as_str().unwrap();
        let (_, needed) = CAPABILITIES.iter().find(|(n, _)| *n == name).expect("every task is in CAPABILITIES");
        for (flag, capability) in [("SendsEmail", Email), ("SignsLinks", LinkKey)] {
            let expected = if needed.contains(&capability) { "1" } else { "0" };
            assert_eq!(task[flag], expected, "Mappings.Tasks.{stem}.{flag}");
        }
        // The functions without SES permission must not ask SES for their send quota at cold start.
        let sends = if shared::tasks::SENDERS.contains(&name) { "1" } else { "0" };
        assert_eq!(task["SendsEmail"], sends, "Mappings.Tasks.{stem}.SendsEmail against shared::tasks::SENDERS");
    }
}

#[test]
fn the_database_url_is_never_resolved_into_the_template_only_its_secret_named() {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    assert!(
        !text.contains("{{resolve:secretsmanager"),
        "a secret resolved at deploy time shows in the function's configuration"
    );
    let t = real_template();
    let parameter = &t["Parameters"]["DatabaseSecretArn"];
    assert!(parameter["AllowedPattern"].as_str().is_some_and(|p| p.starts_with("^arn:aws")), "a full ARN is required");
    for (id, f) in resources_of(&t, FUNCTION) {
        let props = function_properties(&t, f);
        assert_eq!(env(&props, "DATABASE_URL"), None, "{id}");
        assert_eq!(env(&props, "DATABASE_URL_SECRET_ARN").and_then(target), Some("DatabaseSecretArn"), "{id}");
    }
    // The key's permission only when a key is named, and only through Secrets Manager.
    let statements = &t["Resources"]["FunctionBasePolicy"]["Properties"]["PolicyDocument"]["Statement"];
    let kms = statements.as_array().unwrap().iter().find(|s| s.to_string().contains("kms:Decrypt")).expect("kms");
    assert_eq!(kms["Fn::If"][0], "HasDatabaseSecretKmsKey");
    assert!(kms["Fn::If"][1]["Condition"]["StringEquals"].get("kms:ViaService").is_some(), "{kms}");
}

#[test]
fn in_a_vpc_every_function_gets_its_subnets_and_the_endpoints_exist_only_when_asked_for() {
    let t = real_template();
    assert_eq!(t.pointer("/Globals/Function/VpcConfig/Fn::If/0"), Some(&json!("HasVpc")));
    assert_eq!(t.pointer("/Globals/Function/VpcConfig/Fn::If/2"), Some(&json!({ "Ref": "AWS::NoValue" })));
    for (id, f) in resources_of(&t, FUNCTION) {
        assert!(f.pointer("/Properties/VpcConfig").is_none(), "{id}: VpcConfig comes from Globals");
    }
    let endpoints: Vec<(&str, &Value)> = resources_of(&t, "AWS::EC2::VPCEndpoint").collect();
    let services: BTreeSet<String> = endpoints
        .iter()
        .filter_map(|(_, e)| e.pointer("/Properties/ServiceName/Fn::Sub").and_then(Value::as_str))
        .map(|name| name.rsplit('.').next().unwrap().to_string())
        .collect();
    let wanted = ["sqs", "sns", "secretsmanager", "email", "events", "s3"].map(String::from);
    assert_eq!(services, BTreeSet::from(wanted));
    for (id, r) in endpoints.iter().copied().chain(resources_of(&t, "AWS::EC2::SecurityGroup")) {
        assert_eq!(r["Condition"], "HasVpcEndpoints", "{id}: made only with CreateVpcEndpoints");
    }
}

#[test]
fn the_retention_parameter_refuses_what_the_functions_would() {
    let t = real_template();
    let minimum = &t["Parameters"]["JobHistoryRetentionDays"]["MinValue"];
    assert_eq!(minimum.as_i64(), Some(job_history_retention::Retention::minimum().num_days()), "{minimum}");
}

#[test]
fn every_task_in_the_loop_has_its_settings_and_every_setting_its_task() {
    let t = parse(&std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap());
    let looped: BTreeSet<&str> =
        t["Resources"]["Fn::ForEach::Tasks"][1].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let mapped: BTreeSet<&str> = t["Mappings"]["Tasks"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(looped, mapped, "Resources' Fn::ForEach::Tasks and Mappings.Tasks list different tasks");
    let outputs: BTreeSet<&str> =
        t["Outputs"]["Fn::ForEach::TaskOutputs"][1].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(looped, outputs, "Outputs' Fn::ForEach::TaskOutputs lists different tasks");
    let names: BTreeSet<&str> =
        t["Mappings"]["Tasks"].as_object().unwrap().values().filter_map(|m| m["Name"].as_str()).collect();
    let scheduled: BTreeSet<&str> =
        shared::tasks::NAMES.iter().copied().filter(|n| !shared::tasks::EVENT_DRIVEN.contains(n)).collect();
    assert_eq!(names, scheduled, "Mappings.Tasks names other tasks than the code's scheduled ones");
}

#[test]
fn each_task_is_stamped_out_with_its_own_name_schedule_and_queues() {
    let t = real_template();
    let unscheduled =
        ["UnsubscribeFunction", "OrderNotificationsFunction", "FoodRecognitionFunction", "MailFeedbackFunction"];
    for (id, f) in resources_of(&t, FUNCTION).filter(|(id, _)| !unscheduled.contains(id)) {
        let stem = id.strip_suffix("Function").expect("functions are named <Task>Function");
        let queue = f.pointer("/Properties/Events/Work/Properties/Queue").and_then(target);
        assert_eq!(queue, Some(format!("{stem}Queue").as_str()), "{id}");
        let binary = f.pointer("/Metadata/BuildProperties/Binary").and_then(Value::as_str).unwrap();
        assert_eq!(t["Mappings"]["Tasks"][stem]["Name"], binary, "{id}");
        let expression = f.pointer("/Properties/Events/Schedule/Properties/ScheduleExpression");
        assert_eq!(expression, Some(&t["Mappings"]["Tasks"][stem]["Schedule"]), "{id}");
    }
}

#[test]
fn every_function_crate_has_a_function_in_the_template() {
    let t = real_template();
    let deployed: BTreeSet<String> = resources_of(&t, FUNCTION)
        .filter_map(|(_, f)| f.pointer("/Metadata/BuildProperties/Binary").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    assert_eq!(deployed, function_crates());
}

#[test]
fn the_schedule_input_is_an_event_the_function_recognises() {
    let t = real_template();
    let (_, _, e) = events_of(&t, "ScheduleV2").next().expect("a schedule");
    let sample: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace_root().join("events/scheduled.json")).unwrap())
            .unwrap();
    let input: Value = serde_json::from_str(e["Input"].as_str().unwrap()).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(keys(&input), keys(&sample), "events/scheduled.json and the schedule's Input differ in shape");
}

#[test]
fn the_uploads_bucket_is_private_encrypted_unversioned_and_expires_its_temporary_files_after_a_day() {
    let t = real_template();
    let bucket = &t["Resources"]["UploadsBucket"];
    assert_eq!(bucket["Type"], "AWS::S3::Bucket");
    let p = &bucket["Properties"];
    let sse = "/BucketEncryption/ServerSideEncryptionConfiguration/0/ServerSideEncryptionByDefault/SSEAlgorithm";
    assert!(p.pointer(sse).and_then(Value::as_str).is_some_and(|a| ["AES256", "aws:kms"].contains(&a)), "{p}");
    for block in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(p["PublicAccessBlockConfiguration"][block], true, "{block}");
    }
    assert!(p.get("VersioningConfiguration").is_none_or(|v| v["Status"] != "Enabled"), "versioning is off");
    // temp-data-cleanup deletes only the rows: the files under tmp/ must expire by this rule.
    let rules = p.pointer("/LifecycleConfiguration/Rules").and_then(Value::as_array).expect("lifecycle rules");
    let tmp = rules.iter().find(|r| r["Prefix"] == "tmp/").expect("a rule for tmp/");
    assert_eq!((&tmp["Status"], &tmp["ExpirationInDays"]), (&json!("Enabled"), &json!(1)));
}

#[test]
fn meal_photos_reach_food_recognition_and_outlive_a_redrive_of_their_event() {
    let t = real_template();
    let bucket = &t["Resources"]["UploadsBucket"]["Properties"];
    assert_eq!(
        bucket.pointer("/NotificationConfiguration/EventBridgeConfiguration/EventBridgeEnabled"),
        Some(&json!(true))
    );
    let rule = &t["Resources"]["FoodPhotosRule"]["Properties"];
    let pattern = &rule["EventPattern"];
    assert_eq!((&pattern["source"], &pattern["detail-type"]), (&json!(["aws.s3"]), &json!(["Object Created"])));
    assert_eq!(pattern.pointer("/detail/object/key"), Some(&json!([{ "prefix": "food/" }])));
    assert_eq!(target(&pattern["detail"]["bucket"]["name"][0]), Some("UploadsBucket"));
    assert_eq!(target(&rule["Targets"][0]["Arn"]), Some("FoodRecognitionQueue"));
    // A redriven event must still find its photo: the photos expire after the dead-letter queue's retention.
    let rules = bucket.pointer("/LifecycleConfiguration/Rules").and_then(Value::as_array).expect("lifecycle rules");
    let food = rules.iter().find(|r| r["Prefix"] == "food/").expect("a rule for food/");
    let dlq = &t["Resources"]["FoodRecognitionDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"];
    let (kept_days, dlq_days) = (literal_u64(&food["ExpirationInDays"]).unwrap(), literal_u64(dlq).unwrap() / 86_400);
    assert!(kept_days > dlq_days, "photos kept {kept_days} days, events {dlq_days} days in the dead-letter queue");
    // The function reads photos, and nothing else of the bucket.
    let function = &t["Resources"]["FoodRecognitionFunction"]["Properties"];
    let grants = grants(&t, "FoodRecognitionFunction");
    let reads: Vec<&Grant> = grants.iter().filter(|g| g.actions.iter().any(|a| a.starts_with("s3:"))).collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].actions, ["s3:GetObject"]);
    assert!(json!(reads[0].resources).to_string().contains("/food/*"), "{:?}", reads[0].resources);
    let env = &function["Environment"]["Variables"];
    assert_eq!(
        target(&env["FOOD_MODEL_API_KEY_SECRET_ARN"]),
        Some("FoodModelApiKey"),
        "the key's ARN, never its value"
    );
}

#[test]
fn each_task_has_a_stall_alarm_on_its_own_metrics() {
    let t = real_template();
    for (stem, task) in t["Mappings"]["Tasks"].as_object().unwrap() {
        let alarm = &t["Resources"][format!("{stem}StalledAlarm")]["Properties"];
        assert!(alarm.is_object(), "{stem}: no {stem}StalledAlarm");
        let metrics = alarm["Metrics"].as_array().expect("a metric-math alarm");
        let mut ids = BTreeSet::new();
        for m in metrics.iter().filter(|m| m.get("MetricStat").is_some()) {
            let metric = &m["MetricStat"]["Metric"];
            assert_eq!(metric["Namespace"], "Jobs", "{stem}");
            assert_eq!(metric["Dimensions"], json!([{ "Name": "Task", "Value": task["Name"] }]), "{stem}");
            assert_eq!((&m["MetricStat"]["Period"], &m["MetricStat"]["Stat"]), (&json!(3600), &json!("Sum")), "{stem}");
            assert_eq!(m["ReturnData"], false, "{stem}");
            ids.insert((m["Id"].as_str().unwrap(), metric["MetricName"].as_str().unwrap()));
        }
        let names: BTreeSet<&str> = ids.iter().map(|(_, name)| *name).collect();
        assert_eq!(names, BTreeSet::from(["Planned", "Sent", "Failed", "Retried", "DeadLettered"]), "{stem}");
        let returned: Vec<&Value> = metrics.iter().filter(|m| m["ReturnData"] == true).collect();
        assert_eq!(returned.len(), 1, "{stem}: one expression is the alarm's");
        let expression = returned[0]["Expression"].as_str().unwrap().replace(char::is_whitespace, "");
        // Each metric filled with 0, so an hour with no datapoint of one (nothing sent) still counts.
        for (id, _) in &ids {
            assert!(expression.contains(&format!("FILL({id},0)")), "{stem}: {id} is not FILL(.., 0) in {expression}");
        }
        let (planned, sent) =
            (ids.iter().find(|(_, n)| *n == "Planned").unwrap().0, ids.iter().find(|(_, n)| *n == "Sent").unwrap().0);
        assert!(expression.contains(&format!("FILL({planned},0)>0")), "{stem}: {expression}");
        assert!(expression.contains(&format!("FILL({sent},0)==0")), "{stem}: {expression}");
        assert_eq!((&alarm["ComparisonOperator"], &alarm["Threshold"]), (&json!("GreaterThanThreshold"), &json!(0)));
        assert_eq!(target(&alarm["AlarmActions"][0]), Some("AlarmTopic"), "{stem}");
        assert_eq!(target(&alarm["OKActions"][0]), Some("AlarmTopic"), "{stem}");
    }
}

/// The dashboard's body with `${AWS::…}` filled in as CloudFormation would, as JSON.
fn dashboard_body(t: &Value) -> Value {
    let (_, dashboard) = resources_of(t, "AWS::CloudWatch::Dashboard").next().expect("a dashboard");
    let body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"].as_str().expect("a !Sub of a JSON string");
    let body = body.replace("${AWS::Region}", "eu-west-1").replace("${AWS::StackName}", "scheduled-jobs");
    assert!(!body.contains("${"), "the body names something other than the region and the stack");
    serde_json::from_str(&body).expect("the dashboard body is JSON")
}

#[test]
fn the_dashboard_shows_every_task_by_search_and_the_stacks_queues_and_functions() {
    let t = real_template();
    let body = dashboard_body(&t);
    let expressions: Vec<String> = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m[0]["expression"].as_str().map(str::to_string))
        .collect();
    let searched = |schema: &str, metric: &str| {
        expressions.iter().any(|e| e.starts_with(&format!("SEARCH('{schema} MetricName=\"{metric}\"")))
    };
    for metric in
        ["Planned", "Sent", "Failed", "Retried", "DeadLettered", "PlanDuration", "BatchDuration", "SenderRefused"]
    {
        assert!(searched("{Jobs,Task}", metric), "no per-task line of Jobs/{metric}: {expressions:?}");
    }
    assert!(searched("{Jobs,Task,Reason}", "Skipped"), "no Jobs/Skipped per reason");
    for metric in ["Errors", "Duration", "Throttles"] {
        let stacks = expressions.iter().any(|e| {
            e.starts_with(&format!("SEARCH('{{AWS/Lambda,FunctionName}} MetricName=\"{metric}\""))
                && e.contains("\"scheduled-jobs\"")
        });
        assert!(stacks, "no AWS/Lambda {metric} of this stack's functions: {expressions:?}");
    }
    // The dead-letter queues: found by the stack's name and the word every one of their logical ids holds.
    let dlq = expressions.iter().find(|e| e.contains("{AWS/SQS,QueueName}")).expect("a dead-letter queue widget");
    assert!(dlq.contains("\"scheduled-jobs\"") && dlq.contains("DeadLetterQueue"), "{dlq}");
    let mut dead_letter_queues: BTreeSet<&str> = BTreeSet::new();
    for (_, q) in resources_of(&t, QUEUE) {
        dead_letter_queues.extend(q.pointer("/Properties/RedrivePolicy/deadLetterTargetArn").and_then(target));
    }
    dead_letter_queues.insert("ScheduleDeadLetterQueue");
    dead_letter_queues.insert("MailFeedbackDeadLetterQueue");
    for id in dead_letter_queues {
        assert!(id.contains("DeadLetterQueue"), "{id}: the dashboard's search would miss it");
    }
    let ses: BTreeSet<&str> = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().into_iter().flatten())
        .filter(|m| m[0] == "AWS/SES")
        .filter_map(|m| m[1].as_str())
        .collect();
    assert_eq!(ses, BTreeSet::from(["Send", "Bounce", "Complaint"]));
}

#[test]
fn ses_bounces_and_complaints_reach_mail_feedback_and_every_sender_uses_the_configuration_set() {
    let t = real_template();
    let destination = &t["Resources"]["MailFeedbackDestination"];
    assert_eq!(destination["Type"], "AWS::SES::ConfigurationSetEventDestination");
    let d = &destination["Properties"];
    assert_eq!(target(&d["ConfigurationSetName"]), Some("MailConfigurationSet"));
    assert_eq!(d["EventDestination"]["Enabled"], true);
    let types: BTreeSet<&str> =
        d["EventDestination"]["MatchingEventTypes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(types, BTreeSet::from(["bounce", "complaint"]));
    assert_eq!(target(&d["EventDestination"]["SnsDestination"]["TopicARN"]), Some("MailFeedbackTopic"));
    assert_eq!(t["Resources"]["MailConfigurationSet"]["Type"], "AWS::SES::ConfigurationSet");
    assert_eq!(t["Resources"]["MailFeedbackTopic"]["Type"], "AWS::SNS::Topic");
    // The topic feeds the function; what it cannot record after Lambda's retries waits in its dead-letter queue.
    let function = &t["Resources"]["MailFeedbackFunction"];
    assert_eq!(function["Metadata"]["BuildProperties"]["Binary"], "mail-feedback");
    let feeds: Vec<&str> = events_of(&t, "SNS")
        .filter(|(id, ..)| *id == "MailFeedbackFunction")
        .filter_map(|(.., e)| target(&e["Topic"]))
        .collect();
    assert_eq!(feeds, ["MailFeedbackTopic"]);
    let failures = function.pointer("/Properties/EventInvokeConfig/DestinationConfig/OnFailure").unwrap();
    assert_eq!(
        (failures["Type"].as_str(), target(&failures["Destination"])),
        (Some("SQS"), Some("MailFeedbackDeadLetterQueue"))
    );
    let dlq = &t["Resources"]["MailFeedbackDeadLetterQueue"]["Properties"];
    assert_eq!((&dlq["SqsManagedSseEnabled"], &dlq["MessageRetentionPeriod"]), (&json!(true), &json!(1_209_600)));
    // Every function that may send email is told the configuration set (check_capabilities checks its ARN).
    for (id, f) in resources_of(&t, FUNCTION) {
        if grants(&t, id).iter().any(|g| g.allows("ses:SendRawEmail")) {
            let props = function_properties(&t, f);
            assert_eq!(env(&props, "MAIL_CONFIGURATION_SET").and_then(target), Some("MailConfigurationSet"), "{id}");
        }
    }
}

// ---------------------------------------------------------------- each check catches its mistake

/// A template that passes every check; each test below breaks one thing in it.
const GOOD: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Architectures: [arm64]
    Handler: bootstrap
    Timeout: 60
Resources:
  TaskFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: task
    Properties:
      CodeUri: .
      Events:
        Hourly:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 * * * ? *)
            ScheduleExpressionTimezone: UTC
            Input: '{"task":"task","scheduledTime":"<aws.scheduler.scheduled-time>"}'
            RetryPolicy:
              MaximumRetryAttempts: 3
            DeadLetterConfig:
              Arn: !GetAtt ScheduleDlq.Arn
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt TaskQueue.Arn
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 5
      Environment:
        Variables:
          MAX_CONCURRENCY: "5"
  TaskQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 360
      SqsManagedSseEnabled: true
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt TaskDlq.Arn
        maxReceiveCount: 5
  TaskDlq:
    Type: AWS::SQS::Queue
    Properties:
      SqsManagedSseEnabled: true
  ScheduleDlq:
    Type: AWS::SQS::Queue
    Properties:
      SqsManagedSseEnabled: true
  TaskDlqAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions:
        - Name: QueueName
          Value: !GetAtt TaskDlq.QueueName
  ScheduleDlqAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/SQS
      MetricName: ApproximateNumberOfMessagesVisible
      Dimensions:
        - Name: QueueName
          Value: !GetAtt ScheduleDlq.QueueName
  TaskErrorsAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: AWS/Lambda
      MetricName: Errors
      Dimensions:
        - Name: FunctionName
          Value: !Ref TaskFunction
  TaskSenderRefusedAlarm:
    Type: AWS::CloudWatch::Alarm
    Properties:
      Namespace: Jobs
      MetricName: SenderRefused
      Dimensions:
        - Name: Task
          Value: task
"#;

fn crates() -> BTreeSet<String> {
    BTreeSet::from(["task".to_string()])
}

/// The problems of GOOD with `from` replaced by `to`.
fn problems_when(from: &str, to: &str) -> Vec<String> {
    assert!(GOOD.contains(from), "the snippet has no {from:?}");
    all_problems(&parse(&GOOD.replacen(from, to, 1)), &crates())
}

fn assert_reported(problems: &[String], expected: &str) {
    assert!(problems.iter().any(|p| p.contains(expected)), "expected a problem with {expected:?}, got {problems:?}");
}

#[test]
fn the_good_snippet_has_no_problem() {
    assert_eq!(all_problems(&parse(GOOD), &crates()), Vec::<String>::new());
}

#[test]
fn intrinsic_functions_become_their_json_form() {
    let t = parse("A: !Ref X\nB: !GetAtt Q.Arn\nC: !Sub 'a-${X}'\nD: !If [C, 1, 2]\n");
    assert_eq!(
        t,
        json!({ "A": {"Ref": "X"}, "B": {"Fn::GetAtt": ["Q", "Arn"]}, "C": {"Fn::Sub": "a-${X}"}, "D": {"Fn::If": ["C", 1, 2]} })
    );
}

#[test]
fn a_wrong_provided_runtime_is_reported() {
    assert_reported(&problems_when("Runtime: provided.al2023", "Runtime: provided.al2"), "Runtime is \"provided.al2\"");
}

#[test]
fn a_function_may_set_its_runtime_over_the_globals() {
    let problems = problems_when("      CodeUri: .", "      CodeUri: .\n      Runtime: python3.12");
    assert_reported(&problems, "TaskFunction: Runtime is \"python3.12\"");
}

#[test]
fn x86_is_reported() {
    assert_reported(&problems_when("[arm64]", "[x86_64]"), "Architectures");
}

#[test]
fn a_handler_other_than_bootstrap_is_reported() {
    assert_reported(&problems_when("Handler: bootstrap", "Handler: main"), "Handler");
}

#[test]
fn another_build_method_is_reported() {
    assert_reported(&problems_when("BuildMethod: rust-cargolambda", "BuildMethod: makefile"), "BuildMethod");
}

#[test]
fn a_binary_with_no_crate_is_reported() {
    assert_reported(&problems_when("Binary: task", "Binary: tsak"), "Binary tsak names no crate");
}

#[test]
fn a_five_field_cron_is_reported() {
    assert_reported(&problems_when("cron(0 * * * ? *)", "cron(0 * * * *)"), "has 5 fields");
}

#[test]
fn a_cron_with_both_day_fields_set_is_reported() {
    assert_reported(&problems_when("cron(0 * * * ? *)", "cron(0 * * * * *)"), "exactly one of day-of-month");
}

#[test]
fn rate_and_at_expressions_are_read() {
    assert_eq!(schedule_expression_problem("rate(1 hour)"), None);
    assert_eq!(schedule_expression_problem("rate(15 minutes)"), None);
    assert_eq!(schedule_expression_problem("at(2026-11-22T06:00:00)"), None);
    assert!(schedule_expression_problem("rate(1 hours)").is_some());
    assert!(schedule_expression_problem("rate(0 minutes)").is_some());
    assert!(schedule_expression_problem("rate(5)").is_some());
    assert!(schedule_expression_problem("at(2026-11-22 06:00)").is_some());
    assert!(schedule_expression_problem("0 * * * ? *").is_some());
}

#[test]
fn a_schedule_without_a_time_zone_is_reported() {
    assert_reported(
        &problems_when("            ScheduleExpressionTimezone: UTC\n", ""),
        "no explicit ScheduleExpressionTimezone",
    );
}

#[test]
fn a_made_up_time_zone_is_reported() {
    assert_reported(&problems_when("Timezone: UTC", "Timezone: Europe/Springfield"), "not an IANA zone");
}

#[test]
fn a_schedule_without_retry_policy_or_dead_letter_queue_is_reported() {
    let problems = problems_when("            RetryPolicy:\n              MaximumRetryAttempts: 3\n", "");
    assert_reported(&problems, "no RetryPolicy");
    let problems = problems_when("            DeadLetterConfig:\n              Arn: !GetAtt ScheduleDlq.Arn\n", "");
    assert_reported(&problems, "no DeadLetterConfig");
}

#[test]
fn a_schedule_input_without_the_scheduled_time_is_reported() {
    assert_reported(&problems_when("<aws.scheduler.scheduled-time>", "2026-01-01T00:00:00Z"), "Input is not the JSON");
    assert_reported(&problems_when(r#"{"task":"task""#, r#"{"task":"other""#), "Input is not the JSON");
}

#[test]
fn max_receive_count_outside_2_to_10_is_reported() {
    assert_reported(&problems_when("maxReceiveCount: 5", "maxReceiveCount: 0"), "maxReceiveCount is 0");
    assert_reported(&problems_when("maxReceiveCount: 5", "maxReceiveCount: 1"), "maxReceiveCount is 1");
    assert_reported(&problems_when("maxReceiveCount: 5", "maxReceiveCount: 50"), "maxReceiveCount is 50");
}

#[test]
fn a_receive_budget_shorter_than_a_claims_hold_is_reported() {
    // Two receives retry after 15 s at the least, while a dead worker's claims hold for 90 s.
    assert_reported(&problems_when("maxReceiveCount: 5", "maxReceiveCount: 2"), "less than a claim's longest hold");
}

#[test]
fn a_max_receive_count_the_function_is_not_told_is_reported() {
    let problems = problems_when("maxReceiveCount: 5", "maxReceiveCount: 6");
    assert_reported(&problems, "MAX_RECEIVE_COUNT (unset: 5) is not");
}

#[test]
fn a_max_concurrency_the_function_is_not_told_is_reported() {
    assert_reported(&problems_when("MAX_CONCURRENCY: \"5\"", "MAX_CONCURRENCY: \"1\""), "MAX_CONCURRENCY \"1\"");
    assert_reported(&problems_when("          MAX_CONCURRENCY: \"5\"\n", "          OTHER: x\n"), "MAX_CONCURRENCY");
}

#[test]
fn a_function_without_a_sender_refused_alarm_is_reported() {
    assert_reported(&problems_when("MetricName: SenderRefused", "MetricName: Other"), "Jobs/SenderRefused");
}

#[test]
fn a_visibility_timeout_under_six_function_timeouts_is_reported() {
    assert_reported(
        &problems_when("VisibilityTimeout: 360", "VisibilityTimeout: 120"),
        "VisibilityTimeout 120s is under 6 x",
    );
    // SQS's default of 30s is too short for a 60s function.
    assert_reported(&problems_when("      VisibilityTimeout: 360\n", ""), "VisibilityTimeout 30s");
}

#[test]
fn a_consumed_queue_without_redrive_is_reported() {
    let problems = problems_when(
        "      RedrivePolicy:\n        deadLetterTargetArn: !GetAtt TaskDlq.Arn\n        maxReceiveCount: 5\n",
        "",
    );
    assert_reported(&problems, "TaskQueue: feeds TaskFunction but has no RedrivePolicy");
}

#[test]
fn an_unencrypted_queue_is_reported() {
    let problems = problems_when(
        "      VisibilityTimeout: 360\n      SqsManagedSseEnabled: true\n",
        "      VisibilityTimeout: 360\n",
    );
    assert_reported(&problems, "TaskQueue: not encrypted");
}

#[test]
fn an_sqs_event_without_partial_batch_failures_is_reported() {
    let problems = problems_when("[ReportBatchItemFailures]", "[]");
    assert_reported(&problems, "lacks ReportBatchItemFailures");
}

#[test]
fn an_sqs_event_without_maximum_concurrency_is_reported() {
    let problems = problems_when("            ScalingConfig:\n              MaximumConcurrency: 5\n", "");
    assert_reported(&problems, "MaximumConcurrency");
}

#[test]
fn a_dead_letter_queue_without_an_alarm_is_reported() {
    let problems = problems_when("Value: !GetAtt TaskDlq.QueueName", "Value: !GetAtt TaskQueue.QueueName");
    assert_reported(&problems, "TaskDlq: a dead-letter queue with no");
    let problems = problems_when("Value: !GetAtt ScheduleDlq.QueueName", "Value: !GetAtt TaskQueue.QueueName");
    assert_reported(&problems, "ScheduleDlq: a dead-letter queue with no");
}

#[test]
fn a_failure_destination_without_an_alarm_is_reported() {
    let destination = "    Timeout: 60\n    EventInvokeConfig:\n      DestinationConfig:\n        OnFailure:\n          Type: SQS\n          Destination: !GetAtt TaskQueue.Arn\n";
    assert_reported(&problems_when("    Timeout: 60\n", destination), "TaskQueue: a dead-letter queue with no");
}

#[test]
fn a_function_without_an_errors_alarm_is_reported() {
    assert_reported(
        &problems_when("MetricName: Errors", "MetricName: Throttles"),
        "TaskFunction: no alarm on its Errors",
    );
}

// ---------------------------------------------------------------- each permission check catches its mistake

/// A function with exactly its permissions; each test below breaks one thing in it.
const PERMITTED: &str = r#"
Transform: AWS::Serverless-2016-10-31
Parameters:
  DatabaseSecretArn:
    Type: String
Conditions:
  TaskSendsEmail: !Equals ["1", "1"]
  TaskNotifies: !Equals ["0", "1"]
Resources:
  TaskFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: task
    Properties:
      Role: !GetAtt TaskRole.Arn
      LoggingConfig:
        LogGroup: !Ref TaskLogs
      Environment:
        Variables:
          MAIL_CONFIGURATION_SET: !Ref Mail
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt TaskQueue.Arn
  TaskRole:
    Type: AWS::IAM::Role
    Properties:
      ManagedPolicyArns:
        - !Ref Base
      Policies:
        - PolicyName: run
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: [logs:CreateLogStream, logs:PutLogEvents]
                Resource: !GetAtt TaskLogs.Arn
              - Effect: Allow
                Action: [sqs:ReceiveMessage, sqs:DeleteMessage]
                Resource: !GetAtt TaskQueue.Arn
              - Effect: Allow
                Action: sqs:SendMessage
                Resource: [!GetAtt TaskQueue.Arn, !GetAtt TaskDlq.Arn]
  Base:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: secretsmanager:GetSecretValue
            Resource: !Ref DatabaseSecretArn
  TaskMail:
    Type: AWS::IAM::RolePolicy
    Condition: TaskSendsEmail
    Properties:
      RoleName: !Ref TaskRole
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: ses:GetSendQuota
            Resource: "*"
          - Effect: Allow
            Action: ses:SendRawEmail
            Resource:
              - !Sub "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"
              - !Sub "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${Mail}"
  TaskNotify:
    Type: AWS::IAM::RolePolicy
    Condition: TaskNotifies
    Properties:
      RoleName: !Ref TaskRole
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: sns:Publish
            Resource: "*"
  Mail:
    Type: AWS::SES::ConfigurationSet
  TaskLogs:
    Type: AWS::Logs::LogGroup
  OtherLogs:
    Type: AWS::Logs::LogGroup
  TaskQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt TaskDlq.Arn
  TaskDlq:
    Type: AWS::SQS::Queue
  OtherQueue:
    Type: AWS::SQS::Queue
"#;

const TASK_SENDS_EMAIL: &[(&str, &[Capability])] = &[("task", &[Email])];

/// The permission problems of PERMITTED with `from` replaced by `to`, for a task that sends email.
fn permission_problems_when(from: &str, to: &str) -> Vec<String> {
    assert!(PERMITTED.contains(from), "the snippet has no {from:?}");
    permission_problems(&parse(&PERMITTED.replacen(from, to, 1)), TASK_SENDS_EMAIL)
}

#[test]
fn the_permitted_snippet_has_no_problem() {
    assert_eq!(permission_problems(&parse(PERMITTED), TASK_SENDS_EMAIL), Vec::<String>::new());
}

#[test]
fn a_function_without_a_role_of_its_own_is_reported() {
    // SAM would give it AWSLambdaSQSQueueExecutionRole (sqs:* on "*") for its SQS event.
    let problems = permission_problems_when("      Role: !GetAtt TaskRole.Arn\n", "");
    assert_reported(&problems, "TaskFunction: no Role of its own");
}

#[test]
fn an_aws_managed_policy_is_reported() {
    let problems = permission_problems_when(
        "        - !Ref Base\n",
        "        - !Ref Base\n        - arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole\n",
    );
    assert_reported(&problems, "names the managed policy");
}

#[test]
fn a_role_that_cannot_read_the_database_secret_is_reported() {
    let problems = permission_problems_when("Resource: !Ref DatabaseSecretArn", "Resource: !Ref Other");
    assert_reported(&problems, "may not read the database secret");
}

#[test]
fn any_resource_for_an_action_that_names_one_is_reported() {
    let problems =
        permission_problems_when("Resource: [!GetAtt TaskQueue.Arn, !GetAtt TaskDlq.Arn]", "Resource: \"*\"");
    assert_reported(&problems, "grants sqs:SendMessage on \"*\"");
    let problems = permission_problems_when("Action: sqs:SendMessage", "Action: sqs:*");
    assert_reported(&problems, "grants sqs:* by wildcard");
}

#[test]
fn a_capability_the_code_does_not_use_is_reported() {
    // The flag turned on: the task's code sends no SMS.
    let problems =
        permission_problems_when("TaskNotifies: !Equals [\"0\", \"1\"]", "TaskNotifies: !Equals [\"1\", \"1\"]");
    assert_reported(&problems, "TaskFunction: granted Notify, which its code does not use");
    // And one it uses but is not granted.
    let problems =
        permission_problems_when("TaskSendsEmail: !Equals [\"1\", \"1\"]", "TaskSendsEmail: !Equals [\"0\", \"1\"]");
    assert_reported(&problems, "TaskFunction: its code uses Email but its role is not granted it");
}

#[test]
fn a_sender_without_the_configuration_set_is_reported() {
    let problems = permission_problems_when("          MAIL_CONFIGURATION_SET: !Ref Mail\n", "          OTHER: x\n");
    assert_reported(&problems, "sends email without MAIL_CONFIGURATION_SET");
    let problems = permission_problems_when(
        "              - !Sub \"arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${Mail}\"\n",
        "",
    );
    assert_reported(&problems, "allows SendRawEmail without the configuration set's ARN");
}

#[test]
fn a_permission_on_another_functions_resources_is_reported() {
    let problems = permission_problems_when("Resource: !GetAtt TaskLogs.Arn", "Resource: !GetAtt OtherLogs.Arn");
    assert_reported(&problems, "grants logs:CreateLogStream on");
    let problems = permission_problems_when(
        "Action: [sqs:ReceiveMessage, sqs:DeleteMessage]\n                Resource: !GetAtt TaskQueue.Arn",
        "Action: [sqs:ReceiveMessage, sqs:DeleteMessage]\n                Resource: !GetAtt OtherQueue.Arn",
    );
    assert_reported(&problems, "grants sqs:ReceiveMessage on");
    let problems = permission_problems_when("!GetAtt TaskDlq.Arn]", "!GetAtt OtherQueue.Arn]");
    assert_reported(&problems, "grants sqs:SendMessage on");
}
