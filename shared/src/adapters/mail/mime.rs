//! The outgoing message and its MIME form (multipart/alternative: text + HTML).
//!
//! Every header value is checked for CR, LF, NUL, other control characters and Unicode line
//! separators before it reaches the builder: a value that would split a header is an error, never
//! silently passed on.

use super::MailClass;
use crate::domain::EmailAddress;
use crate::domain::text::is_forbidden;
use jiff::Timestamp;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::url::URL;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub email: EmailAddress,
}

impl Mailbox {
    pub fn new(name: Option<&str>, email: EmailAddress) -> Self {
        Self {
            name: name.map(str::to_owned),
            email,
        }
    }

    fn address(&self) -> Address<'_> {
        match &self.name {
            Some(name) => Address::new_address(Some(name.as_str()), self.email.as_str()),
            None => Address::new_address(None::<&str>, self.email.as_str()),
        }
    }
}

/// A rendered email ready to send. It serializes so a send whose outcome SES left unknown can
/// keep it for one resend (see `usecases::silence`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OutgoingEmail {
    pub from: Mailbox,
    pub to: Mailbox,
    pub reply_to: Option<EmailAddress>,
    pub subject: String,
    pub html: String,
    pub text: String,
    pub class: MailClass,
    /// Email kind (`order_thanks`), sent as a header and an SES tag.
    pub kind: String,
    pub merchant_id: String,
    /// The send record's key, so SES events can be matched back to it.
    pub send_ref: String,
    /// RFC 8058 one-click unsubscribe URL (marketing-class mail).
    pub list_unsubscribe: Option<String>,
    /// The merchant's own SES configuration set, over the deployment's.
    pub configuration_set: Option<String>,
}

impl OutgoingEmail {
    /// An email from `merchant`'s sender identity to `to`, with its reply-to and our tracking
    /// headers. `send_ref` is the send record's sort key.
    pub fn compose(
        merchant: &crate::domain::Merchant,
        to: Mailbox,
        kind: super::EmailKind,
        rendered: super::Rendered,
        send_ref: &str,
        list_unsubscribe: Option<String>,
    ) -> Self {
        Self {
            from: Mailbox::new(
                Some(&merchant.sender.from_name),
                merchant.sender.from_email.clone(),
            ),
            to,
            reply_to: merchant.sender.reply_to.clone(),
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
            class: kind.class(),
            kind: kind.as_str().to_owned(),
            merchant_id: merchant.id.to_string(),
            send_ref: send_ref.to_owned(),
            list_unsubscribe,
            configuration_set: merchant.sender.configuration_set.clone(),
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MimeError {
    #[error("header {0} contains a line break or control character")]
    UnsafeHeader(&'static str),
    #[error("marketing-class mail needs a one-click unsubscribe URL")]
    MissingUnsubscribe,
    #[error("could not serialise the message")]
    Serialize,
}

fn header_safe(name: &'static str, value: &str) -> Result<(), MimeError> {
    if value.chars().any(is_forbidden) {
        Err(MimeError::UnsafeHeader(name))
    } else {
        Ok(())
    }
}

impl OutgoingEmail {
    /// Serialises the message. `now` is the Date header; the Message-ID is unique per call.
    pub fn to_mime(&self, now: Timestamp) -> Result<Vec<u8>, MimeError> {
        header_safe("Subject", &self.subject)?;
        header_safe("From", self.from.name.as_deref().unwrap_or_default())?;
        header_safe("To", self.to.name.as_deref().unwrap_or_default())?;
        header_safe("X-Aftercare-Kind", &self.kind)?;
        header_safe("X-Aftercare-Merchant", &self.merchant_id)?;
        header_safe("X-Aftercare-Ref", &self.send_ref)?;
        let message_id = format!(
            "{}@{}",
            crate::domain::ids::new_id(),
            self.from.email.domain()
        );
        let mut builder = MessageBuilder::new()
            .from(self.from.address())
            .to(self.to.address())
            .subject(self.subject.as_str())
            .date(now.as_second())
            .message_id(message_id)
            .header("X-Aftercare-Kind", Raw::new(self.kind.as_str()))
            .header("X-Aftercare-Merchant", Raw::new(self.merchant_id.as_str()))
            .header("X-Aftercare-Ref", Raw::new(self.send_ref.as_str()))
            .text_body(self.text.as_str())
            .html_body(self.html.as_str());
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(Address::new_address(None::<&str>, reply_to.as_str()));
        }
        match (self.class, &self.list_unsubscribe) {
            (MailClass::Marketing, None) => return Err(MimeError::MissingUnsubscribe),
            (_, Some(url)) => {
                header_safe("List-Unsubscribe", url)?;
                builder = builder
                    .header("List-Unsubscribe", URL::new(url.as_str()))
                    .header(
                        "List-Unsubscribe-Post",
                        Raw::new("List-Unsubscribe=One-Click"),
                    );
            }
            (MailClass::Transactional, None) => {}
        }
        builder.write_to_vec().map_err(|_| MimeError::Serialize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            from: Mailbox::new(
                Some("Acme Outdoor"),
                EmailAddress::parse("f", "hello@acme.example").unwrap(),
            ),
            to: Mailbox::new(
                Some("Zoë Müller"),
                EmailAddress::parse("t", "zoe@example.com").unwrap(),
            ),
            reply_to: Some(EmailAddress::parse("r", "care@acme.example").unwrap()),
            subject: "Danke für Ihre Bestellung SO-1".into(),
            html: "<p>Hallo</p>".into(),
            text: "Hallo".into(),
            class: MailClass::Transactional,
            kind: "order_thanks".into(),
            merchant_id: "acme".into(),
            send_ref: "SEND#c1#order_thanks#SO-1#0".into(),
            list_unsubscribe: None,
            configuration_set: None,
        }
    }

    #[test]
    fn builds_multipart_alternative_with_headers() {
        let raw = String::from_utf8(email().to_mime(Timestamp::UNIX_EPOCH).unwrap()).unwrap();
        assert!(raw.contains("multipart/alternative"));
        assert!(raw.contains("Reply-To: <care@acme.example>"));
        assert!(raw.contains("X-Aftercare-Kind: order_thanks"));
        assert!(raw.contains("text/plain"));
        assert!(raw.contains("text/html"));
        assert!(
            raw.contains("@acme.example>"),
            "message id on the sender's domain"
        );
        // Non-ASCII subject is encoded, never raw 8-bit in the header.
        let subject = raw.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(subject.is_ascii(), "{subject}");
        assert!(!raw.contains("List-Unsubscribe"));
    }

    #[test]
    fn refuses_header_injection() {
        for bad in [
            "Hi\r\nBcc: victim@example.com",
            "Hi\nX: y",
            "nul\0",
            "sep\u{2028}x",
        ] {
            let mut e = email();
            e.subject = bad.into();
            assert_eq!(
                e.to_mime(Timestamp::UNIX_EPOCH),
                Err(MimeError::UnsafeHeader("Subject"))
            );
        }
        let mut e = email();
        e.to.name = Some("Eve\r\nBcc: x@y.z".into());
        assert_eq!(
            e.to_mime(Timestamp::UNIX_EPOCH),
            Err(MimeError::UnsafeHeader("To"))
        );
    }

    #[test]
    fn marketing_mail_carries_one_click_unsubscribe() {
        let mut e = email();
        e.class = MailClass::Marketing;
        assert_eq!(
            e.to_mime(Timestamp::UNIX_EPOCH),
            Err(MimeError::MissingUnsubscribe)
        );
        e.list_unsubscribe = Some("https://api.example.com/u/tok".into());
        let raw = String::from_utf8(e.to_mime(Timestamp::UNIX_EPOCH).unwrap()).unwrap();
        assert!(raw.contains("List-Unsubscribe: <https://api.example.com/u/tok>"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
    }
}
