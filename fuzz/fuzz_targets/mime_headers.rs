//! The MIME builder: customer- and merchant-controlled text (names, subject, body) can never add or
//! split a header. Either the message is refused, or its header block has exactly the headers we
//! write, each on its own (folded) line.
#![no_main]

use aftercare::domain::EmailAddress;
use aftercare::adapters::mail::MailClass;
use aftercare::adapters::mail::{Mailbox, OutgoingEmail};
use libfuzzer_sys::fuzz_target;

const HEADERS: &[&str] = &[
    "from", "to", "reply-to", "subject", "date", "message-id", "mime-version", "content-type",
    "content-transfer-encoding", "x-aftercare-kind", "x-aftercare-merchant", "x-aftercare-ref",
    "list-unsubscribe", "list-unsubscribe-post", "feedback-id", "auto-submitted", "precedence",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut f = text.split('\u{1e}');
    let mut next = || f.next().unwrap_or_default().to_owned();
    let (Ok(from), Ok(to)) = (
        EmailAddress::parse("from", "hello@acme.example"),
        EmailAddress::parse("to", "zoe@example.com"),
    ) else {
        return;
    };
    let (from_name, to_name, subject, html, plain) = (next(), next(), next(), next(), next());
    let email = OutgoingEmail {
        from: Mailbox::new(Some(&from_name), from),
        to: Mailbox::new(Some(&to_name), to),
        reply_to: None,
        subject,
        html,
        text: plain,
        class: MailClass::Marketing,
        kind: "usage_tips".into(),
        merchant_id: "acme".into(),
        send_ref: "SEND#c#usage_tips#SO-1#0".into(),
        list_unsubscribe: Some("https://api.example.com/v1/unsubscribe/tok".into()),
        configuration_set: None,
    };
    let Ok(raw) = email.to_mime(jiff::Timestamp::UNIX_EPOCH) else {
        return;
    };
    let raw = String::from_utf8_lossy(&raw);
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    for line in head.split("\r\n") {
        assert!(!line.contains('\r') && !line.contains('\n'), "bare CR or LF in {line:?}");
        if line.starts_with(' ') || line.starts_with('\t') {
            continue; // a folded continuation
        }
        let name = line.split(':').next().unwrap_or_default().to_ascii_lowercase();
        assert!(HEADERS.contains(&name.as_str()), "unexpected header {name:?} in {head:?}");
    }
});
