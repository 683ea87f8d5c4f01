//! Email: rendering, MIME building and the SES v2 sender.

pub mod billing;
pub mod format;
pub mod mime;
pub mod render;
pub mod samples;
pub mod ses;

pub use mime::{Mailbox, OutgoingEmail};
pub use render::{EmailKind, Rendered, Renderer};
pub use ses::{SendFailure, SesMailer};

/// Transactional mail (thank-you, shipping, billing) goes to everyone not suppressed;
/// marketing-class mail (surveys, reviews, tips, cross-sell) also honours unsubscribes, caps and
/// quiet hours, and carries one-click unsubscribe headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailClass {
    Transactional,
    Marketing,
}
