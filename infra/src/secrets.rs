//! Secrets read once at cold start: the unsubscribe links' signing key, from Secrets Manager in AWS.

use crate::{
    aws::aws_error,
    config::{KeySource, Secret},
    Error,
};

/// The key itself: as configured, or the string value of the secret the ARN names.
pub async fn unsubscribe_key(source: &KeySource) -> Result<Secret, Error> {
    let arn = match source {
        KeySource::Value(key) => return Ok(key.clone()),
        KeySource::SecretArn(arn) => arn,
    };
    let client = aws_sdk_secretsmanager::Client::new(&crate::aws::sdk_config().await);
    let secret = client.get_secret_value().secret_id(arn).send().await.map_err(|e| aws_error("secretsmanager", e))?;
    let key = secret.secret_string().ok_or_else(|| Error::Config(format!("the secret {arn} has no string value")))?;
    Ok(Secret::new(key))
}
