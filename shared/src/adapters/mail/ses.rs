//! The SES v2 sender.
//!
//! SES `SendEmail` has no idempotency token, so the client given here must have the SDK's
//! automatic retries **disabled** (see [`crate::adapters::aws::ses_client`]): a retry after a lost response
//! would send twice. [`SesMailer::send`] makes exactly one call and classifies the outcome;
//! [`crate::usecases::send`] retries under the claim only when SES said the message was not sent.

use super::OutgoingEmail;
pub use crate::ports::SendFailure;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, MessageTag, RawMessage};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use jiff::Timestamp;

/// Tag values may hold only ASCII letters, digits, `_` and `-`.
fn tag_value(v: &str) -> String {
    let cleaned: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

#[derive(Clone, Debug)]
pub struct SesMailer {
    client: Client,
    configuration_set: Option<String>,
}

impl SesMailer {
    /// `client` must be built without automatic retries.
    pub fn new(client: Client, configuration_set: Option<String>) -> Self {
        Self {
            client,
            configuration_set,
        }
    }

    /// Opens the connection to SES without sending: one `GetConfigurationSet` of the deployment's
    /// configuration set (IAM scopes it to that set). `Ok(false)`: no set configured, nothing to
    /// ask. Any answer from SES, a missing set included, leaves the connection open.
    pub async fn warm_up(&self) -> Result<bool, String> {
        let Some(name) = &self.configuration_set else {
            return Ok(false);
        };
        match self
            .client
            .get_configuration_set()
            .configuration_set_name(name)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().code().is_some() => Err(format!(
                "SES answered {}",
                e.err().code().unwrap_or_default()
            )),
            Err(e) => Err(aws_sdk_sesv2::error::DisplayErrorContext(&e).to_string()),
        }
    }

    /// One `SendEmail` call with the raw MIME message. Returns the SES message id.
    pub async fn send(&self, email: &OutgoingEmail, now: Timestamp) -> Result<String, SendFailure> {
        let raw = email
            .to_mime(now)
            .map_err(|e| SendFailure::Invalid(e.to_string()))?;
        let content = EmailContent::builder()
            .raw(
                RawMessage::builder()
                    .data(Blob::new(raw))
                    .build()
                    .map_err(|e| SendFailure::Invalid(e.to_string()))?,
            )
            .build();
        let tag = |name: &str, value: &str| {
            MessageTag::builder()
                .name(name)
                .value(tag_value(value))
                .build()
        };
        let mut req = self
            .client
            .send_email()
            .from_email_address(email.from.email.as_str())
            .destination(
                Destination::builder()
                    .to_addresses(email.to.email.as_str())
                    .build(),
            )
            .content(content)
            .set_configuration_set_name(
                email
                    .configuration_set
                    .clone()
                    .or_else(|| self.configuration_set.clone()),
            );
        for t in [
            tag("kind", &email.kind),
            tag("merchant", &email.merchant_id),
        ] {
            req = req.email_tags(t.map_err(|e| SendFailure::Invalid(e.to_string()))?);
        }
        match req.send().await {
            Ok(out) => out.message_id.ok_or_else(|| SendFailure::Ambiguous {
                reason: "SES returned no message id".into(),
            }),
            Err(err) => Err(classify(err)),
        }
    }
}

fn classify(err: SdkError<SendEmailError, HttpResponse>) -> SendFailure {
    match &err {
        // Construction failed before anything left the process.
        SdkError::ConstructionFailure(_) => {
            SendFailure::Invalid("request construction failed".into())
        }
        SdkError::DispatchFailure(d) if d.is_user() => {
            SendFailure::Invalid("the request could not be dispatched".into())
        }
        // From here on the request may have reached SES: we cannot tell a lost response from a
        // request that never arrived.
        SdkError::TimeoutError(_) => SendFailure::Ambiguous {
            reason: "timeout".into(),
        },
        SdkError::DispatchFailure(d) if d.is_timeout() => SendFailure::Ambiguous {
            reason: "timeout".into(),
        },
        SdkError::DispatchFailure(_) => SendFailure::Ambiguous {
            reason: "connection failure".into(),
        },
        SdkError::ResponseError(_) => SendFailure::Ambiguous {
            reason: "unreadable response".into(),
        },
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let e = se.err();
            let code = e
                .code()
                .map(str::to_owned)
                .unwrap_or_else(|| variant_name(e).to_owned());
            match e {
                // SES answered and did not send: safe to try again later.
                SendEmailError::TooManyRequestsException(_)
                | SendEmailError::LimitExceededException(_)
                | SendEmailError::SendingPausedException(_)
                | SendEmailError::AccountSuspendedException(_) => {
                    SendFailure::NotSentRetryable { code }
                }
                SendEmailError::MessageRejected(_)
                | SendEmailError::MailFromDomainNotVerifiedException(_)
                | SendEmailError::BadRequestException(_)
                | SendEmailError::NotFoundException(_) => SendFailure::Rejected { code },
                _ if status == 429
                    || code == "Throttling"
                    || code == "ServiceUnavailable"
                    || status == 503 =>
                {
                    SendFailure::NotSentRetryable { code }
                }
                // Any other server error may come after the message was accepted.
                _ if status >= 500
                    || matches!(code.as_str(), "InternalFailure" | "InternalServerError") =>
                {
                    SendFailure::Ambiguous { reason: code }
                }
                _ => SendFailure::Rejected { code },
            }
        }
        _ => SendFailure::Ambiguous {
            reason: "unknown failure".into(),
        },
    }
}

fn variant_name(e: &SendEmailError) -> &'static str {
    match e {
        SendEmailError::TooManyRequestsException(_) => "TooManyRequestsException",
        SendEmailError::LimitExceededException(_) => "LimitExceededException",
        SendEmailError::SendingPausedException(_) => "SendingPausedException",
        SendEmailError::AccountSuspendedException(_) => "AccountSuspendedException",
        SendEmailError::MessageRejected(_) => "MessageRejected",
        SendEmailError::MailFromDomainNotVerifiedException(_) => {
            "MailFromDomainNotVerifiedException"
        }
        SendEmailError::BadRequestException(_) => "BadRequestException",
        SendEmailError::NotFoundException(_) => "NotFoundException",
        _ => "Unknown",
    }
}

impl crate::ports::Mailer for SesMailer {
    type Message = OutgoingEmail;

    async fn send(&self, message: &OutgoingEmail, now: Timestamp) -> Result<String, SendFailure> {
        SesMailer::send(self, message, now).await
    }
}
