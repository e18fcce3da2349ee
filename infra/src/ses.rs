//! The mailer port on Amazon SES (v1 SendRawEmail), so the message is the same MIME the outbox files.

use async_trait::async_trait;
use aws_sdk_ses::primitives::Blob;
use aws_sdk_ses::types::RawMessage;
use aws_sdk_ses::Client;
use shared::ports::{Email, Mailer};
use shared::Result;

use crate::aws::{aws_error, invalid_request};
use crate::error::job;

const SERVICE: &str = "ses";

pub struct SesMailer {
    client: Client,
}

impl SesMailer {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &Email) -> Result<String> {
        let raw = RawMessage::builder()
            .data(Blob::new(crate::mime::render(email).map_err(job)?))
            .build()
            .map_err(|e| job(invalid_request(SERVICE, e)))?;
        let sent =
            self.client.send_raw_email().raw_message(raw).send().await.map_err(|e| job(aws_error(SERVICE, e)))?;
        Ok(sent.message_id().to_owned())
    }
}
