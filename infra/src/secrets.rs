//! Secrets read at run time: the unsubscribe links' signing key and the vision model's API key, from Secrets
//! Manager in AWS (the template passes the secret's ARN, never its value).

use crate::{
    aws::aws_error,
    config::{KeySource, Secret},
    Error,
};

/// The key itself: as configured, or the string value of the secret the ARN names, read now.
pub async fn key(source: &KeySource) -> Result<Secret, Error> {
    let arn = match source {
        KeySource::Value(key) => return Ok(key.clone()),
        KeySource::SecretArn(arn) => arn,
    };
    read(&aws_sdk_secretsmanager::Client::new(&crate::aws::sdk_config().await), arn).await
}

/// The string value of the secret `arn` names, as it is now.
pub async fn read(client: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<Secret, Error> {
    let secret = client.get_secret_value().secret_id(arn).send().await.map_err(|e| aws_error("secretsmanager", e))?;
    let key = secret.secret_string().ok_or_else(|| Error::Config(format!("the secret {arn} has no string value")))?;
    Ok(Secret::new(key))
}
