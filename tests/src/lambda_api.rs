//! A stand-in for the Lambda runtime API (the HTTP interface a function's `lambda_runtime::run` polls), so a
//! real function binary can be run end to end with no Docker and no cargo-lambda: it hands out the events a
//! test queues and gives back what the function answered.

use std::{collections::VecDeque, sync::Arc};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::{mpsc, Mutex},
};

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Response(Value),
    /// The handler failed: Lambda's error document (errorType, errorMessage).
    Error(Value),
}

pub struct RuntimeApi {
    address: String,
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    answers: mpsc::UnboundedReceiver<(String, Answer)>,
    next_id: u64,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("bound").to_string();
        let events: Arc<Mutex<VecDeque<(String, Value)>>> = Arc::default();
        let (tx, answers) = mpsc::unbounded_channel();
        let queued = events.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, queued.clone(), tx.clone()));
            }
        });
        Self { address, events, answers, next_id: 0 }
    }

    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Invokes the function with `event` and waits for its answer.
    pub async fn invoke(&mut self, event: Value) -> Answer {
        self.next_id += 1;
        let id = format!("request-{}", self.next_id);
        self.events.lock().await.push_back((id.clone(), event));
        let (answered, answer) = tokio::time::timeout(std::time::Duration::from_secs(60), self.answers.recv())
            .await
            .expect("the function answered within 60 s")
            .expect("the runtime API is up");
        assert_eq!(answered, id);
        answer
    }
}

/// One keep-alive connection: requests in, responses out. `next` waits until an event is queued.
async fn serve(
    stream: TcpStream,
    events: Arc<Mutex<VecDeque<(String, Value)>>>,
    answers: mpsc::UnboundedSender<(String, Answer)>,
) {
    let mut stream = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            stream.read_line(&mut header).await.expect("a header line");
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("a length");
                }
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.expect("the body");
        let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        let reply = if path.ends_with("/runtime/invocation/next") {
            let (id, event) = loop {
                if let Some(next) = events.lock().await.pop_front() {
                    break next;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            };
            let body = event.to_string();
            let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-runtime-aws-request-id: {id}\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:000000000000:function:test\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            let segments: Vec<&str> = path.split('/').collect();
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            match segments.as_slice() {
                [.., "invocation", id, "response"] => answers.send((id.to_string(), Answer::Response(value))).ok(),
                [.., "invocation", id, "error"] => answers.send((id.to_string(), Answer::Error(value))).ok(),
                _ => None,
            };
            "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}".to_owned()
        };
        if stream.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
