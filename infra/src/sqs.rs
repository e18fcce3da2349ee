//! The queue port on Amazon SQS: a task's queue and its dead-letter queue.

use async_trait::async_trait;
use aws_sdk_sqs::operation::receive_message::builders::ReceiveMessageFluentBuilder;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use shared::ports::{DeadLetter, Queue, Received, MAX_QUEUE_BATCH};
use shared::Result;
use std::time::Duration;

use crate::aws::{aws_error, failure, invalid_request};
use crate::error::{job, Fault};

const SERVICE: &str = "sqs";
/// The message attribute that carries why a message was dead-lettered by hand.
const REASON: &str = "reason";
/// The longest visibility timeout SQS accepts: 12 hours. The embedded queue caps the same way.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// A visibility as SQS takes it: whole seconds, at most twelve hours.
pub(crate) fn visibility_secs(visibility: Duration) -> i32 {
    visibility.min(MAX_VISIBILITY).as_secs() as i32
}

pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: String, dead_letter_url: String) -> Self {
        Self { client, url, dead_letter_url }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_batch(&self, bodies: &[String]) -> Result<()> {
        if bodies.is_empty() {
            return Ok(());
        }
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| job(invalid_request(SERVICE, e)))?;
        let sent = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| job(aws_error(SERVICE, e)))?;
        if sent.failed().is_empty() {
            return Ok(());
        }
        // Our fault (a too large body) fails again; SQS's fault may pass on a retry.
        let fault = if sent.failed().iter().any(|f| !f.sender_fault()) { Fault::Retryable } else { Fault::Permanent };
        let failures: Vec<String> = sent
            .failed()
            .iter()
            .map(|f| format!("entry {} {}: {}", f.id(), f.code(), f.message().unwrap_or("")))
            .collect();
        let message = format!("{} of {} messages not sent: {}", failures.len(), bodies.len(), failures.join("; "));
        Err(job(failure(SERVICE, &message, fault)))
    }

    async fn receive(&self, max: u32, visibility: Duration) -> Result<Vec<Received>> {
        let received = self
            .receive_from(&self.url, max, visibility_secs(visibility))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| job(aws_error(SERVICE, e)))?;
        Ok(received
            .messages()
            .iter()
            .map(|m| Received {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| job(aws_error(SERVICE, e)))?;
        Ok(())
    }

    async fn change_visibility(&self, receipt: &str, visibility: Duration) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(visibility_secs(visibility))
            .send()
            .await
            .map_err(|e| job(aws_error(SERVICE, e)))?;
        Ok(())
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<()> {
        let reason = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(reason)
            .build()
            .map_err(|e| job(invalid_request(SERVICE, e)))?;
        self.client
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_body(body)
            .message_attributes(REASON, reason)
            .send()
            .await
            .map_err(|e| job(aws_error(SERVICE, e)))?;
        Ok(())
    }

    async fn peek_dead_letters(&self, max: u32) -> Result<Vec<DeadLetter>> {
        // Visibility 0 leaves them where they are; SQS samples, so a peek may show fewer than there are.
        let received = self
            .receive_from(&self.dead_letter_url, max, 0)
            .message_attribute_names(REASON)
            .send()
            .await
            .map_err(|e| job(aws_error(SERVICE, e)))?;
        Ok(received
            .messages()
            .iter()
            .map(|m| DeadLetter {
                message_id: m.message_id().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                reason: m
                    .message_attributes()
                    .and_then(|a| a.get(REASON))
                    .and_then(|v| v.string_value())
                    .unwrap_or("moved by the queue's redrive policy after maxReceiveCount receives")
                    .to_owned(),
            })
            .collect())
    }

    /// StartMessageMoveTask from the DLQ back to its queue; where that call is not available (a local
    /// emulator, a partition without it) or refused, the messages are moved by hand, ten at a time.
    async fn redrive(&self) -> Result<u64> {
        let waiting = self.count(&self.dead_letter_url, &[QueueAttributeName::ApproximateNumberOfMessages]).await?;
        let source = self.arn(&self.dead_letter_url).await?;
        let destination = self.arn(&self.url).await?;
        match self.client.start_message_move_task().source_arn(source).destination_arn(destination).send().await {
            Ok(_) => Ok(waiting),
            Err(e) => {
                let e = aws_error(SERVICE, e);
                tracing::warn!(error = %e, "StartMessageMoveTask failed; moving the dead letters by hand");
                self.move_by_hand().await
            }
        }
    }

    async fn depth(&self) -> Result<u64> {
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ];
        self.count(&self.url, &names).await
    }
}

impl SqsQueue {
    /// A ReceiveMessage of up to `max` (at most `MAX_QUEUE_BATCH`) from `url`, hidden for `visibility_secs`, without waiting.
    fn receive_from(&self, url: &str, max: u32, visibility_secs: i32) -> ReceiveMessageFluentBuilder {
        self.client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, MAX_QUEUE_BATCH as u32) as i32)
            .visibility_timeout(visibility_secs)
            .wait_time_seconds(0)
    }

    /// The sum of the named count attributes of a queue.
    async fn count(&self, url: &str, names: &[QueueAttributeName]) -> Result<u64> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| job(aws_error(SERVICE, e)))?;
        Ok(names
            .iter()
            .map(|name| {
                attributes.attributes().and_then(|a| a.get(name)).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0)
            })
            .sum())
    }

    async fn arn(&self, url: &str) -> Result<String> {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| job(aws_error(SERVICE, e)))?;
        attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| shared::Error::permanent(format!("sqs: {url} has no QueueArn")))
    }

    /// Receive from the DLQ, send to the queue, then delete: a crash between the two sends a message twice,
    /// never loses one.
    async fn move_by_hand(&self) -> Result<u64> {
        let mut moved = 0;
        loop {
            let letters = self
                .receive_from(&self.dead_letter_url, MAX_QUEUE_BATCH as u32, 60)
                .send()
                .await
                .map_err(|e| job(aws_error(SERVICE, e)))?;
            let messages = letters.messages();
            if messages.is_empty() {
                return Ok(moved);
            }
            let bodies: Vec<String> = messages.iter().map(|m| m.body().unwrap_or_default().to_owned()).collect();
            self.send_batch(&bodies).await?;
            for message in messages {
                self.client
                    .delete_message()
                    .queue_url(&self.dead_letter_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .map_err(|e| job(aws_error(SERVICE, e)))?;
            }
            moved += messages.len() as u64;
        }
    }
}
