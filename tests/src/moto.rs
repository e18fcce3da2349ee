//! A moto server of one's own for a test: SQS, SES, SNS and EventBridge on a free local port, gone when the `Moto` is dropped.

use aws_config::{Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long moto may take to start answering (it imports a lot of Python on a busy machine).
const STARTUP: Duration = Duration::from_secs(60);

pub struct Moto {
    child: Child,
    port: u16,
}

/// `MOTO_SERVER`, else the project's venv (what `make test` installs), else whatever `PATH` has.
fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return path.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| {
        panic!("moto_server not found: run `make test` (it installs moto into .venv), or set MOTO_SERVER to its path")
    })
}

/// A plain HTTP/1.0 exchange with the local server: status code and body.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Ok((status, body))
}

impl Moto {
    pub async fn start() -> Moto {
        let port =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("a free port").port();
        let binary = moto_binary();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; run `make test` to install moto", binary.display()));
        let mut moto = Moto { child, port };
        let started = Instant::now();
        loop {
            if matches!(http(port, "GET", "/moto-api/").map(|(status, _)| status), Ok(200)) {
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("{} exited at start ({status}); is port {port} taken?", binary.display());
            }
            assert!(started.elapsed() < STARTUP, "moto did not answer on port {port} within {STARTUP:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Region us-east-1 and dummy keys: moto checks neither.
    pub async fn sdk_config(&self) -> SdkConfig {
        infra::aws::loader()
            .endpoint_url(self.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .load()
            .await
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk_config().await)
    }

    pub async fn ses(&self) -> aws_sdk_ses::Client {
        aws_sdk_ses::Client::new(&self.sdk_config().await)
    }

    pub async fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.sdk_config().await)
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        // Moto serves buckets by path, not by virtual host.
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config().await).force_path_style(true).build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub async fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    pub async fn events(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk_config().await)
    }

    /// A dead-letter queue and a queue that redrives to it after `max_receive_count` receives, as template.yaml
    /// declares them: returns (queue URL, dead-letter queue URL).
    pub async fn create_queue_pair(
        &self,
        name: &str,
        max_receive_count: u32,
        visibility_secs: u32,
    ) -> (String, String) {
        let sqs = self.sqs().await;
        let dlq = sqs.create_queue().queue_name(format!("{name}-dlq")).send().await.expect("create the DLQ");
        let dlq_url = dlq.queue_url().expect("a DLQ URL").to_owned();
        let dlq_arn = queue_arn(&sqs, &dlq_url).await;
        let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count });
        let queue = sqs
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .attributes(QueueAttributeName::VisibilityTimeout, visibility_secs.to_string())
            .send()
            .await
            .expect("create the queue");
        (queue.queue_url().expect("a queue URL").to_owned(), dlq_url)
    }

    /// An SNS topic with an SQS queue subscribed to it (raw delivery off): what SNS delivers, the queue holds
    /// as SNS's JSON envelope (`Type`, `MessageId`, `TopicArn`, `Message`…). Returns (topic ARN, queue URL,
    /// subscription ARN).
    pub async fn topic_into_queue(&self, name: &str) -> (String, String, String) {
        let (sns, sqs) = (self.sns().await, self.sqs().await);
        let topic = sns.create_topic().name(name).send().await.expect("create the topic");
        let topic_arn = topic.topic_arn().expect("a topic ARN").to_owned();
        let queue = sqs.create_queue().queue_name(format!("{name}-inbox")).send().await.expect("create the queue");
        let queue_url = queue.queue_url().expect("a queue URL").to_owned();
        let queue_arn = queue_arn(&sqs, &queue_url).await;
        let subscription = sns
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe the queue");
        let subscription_arn = subscription.subscription_arn().expect("a subscription ARN").to_owned();
        (topic_arn, queue_url, subscription_arn)
    }

    /// Every model moto keeps, by service and model name (its `/moto-api/data.json`).
    async fn data(&self) -> serde_json::Value {
        let port = self.port;
        let (status, body) = tokio::task::spawn_blocking(move || http(port, "GET", "/moto-api/data.json"))
            .await
            .expect("the request thread")
            .expect("moto's data.json");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("data.json is JSON")
    }

    /// The whole MIME of every SendRawEmail moto took, oldest first.
    pub async fn raw_emails(&self) -> Vec<String> {
        self.data().await["ses"]["RawMessage"]
            .as_array()
            .map(|raw| raw.iter().filter_map(|m| m["raw_data"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// Every SMS SNS published: (message id, phone number, text). moto does not keep their attributes.
    pub async fn sms_messages(&self) -> Vec<(String, String, String)> {
        let text = |m: &serde_json::Value, field: &str| m[field].as_str().unwrap_or_default().to_owned();
        self.data().await["sns"]["SMS"]
            .as_array()
            .map(|sms| {
                sms.iter().map(|m| (text(m, "message_id"), text(m, "phone_number"), text(m, "message"))).collect()
            })
            .unwrap_or_default()
    }

    /// The messages published to each platform endpoint, by message id, as (endpoint ARN, {id: message}).
    pub async fn endpoint_messages(&self) -> Vec<(String, serde_json::Value)> {
        self.data().await["sns"]["PlatformEndpoint"]
            .as_array()
            .map(|endpoints| {
                endpoints
                    .iter()
                    .map(|e| (e["arn"].as_str().unwrap_or_default().to_owned(), e["messages"].clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("the queue's attributes");
    attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).expect("an ARN").to_owned()
}
