//! Email: rendering, MIME building and the SES v2 sender.

pub mod billing;
pub mod format;
pub mod mime;
pub mod refunds;
pub mod render;
pub mod samples;
pub mod ses;

pub use crate::domain::send::{EmailKind, MailClass};
pub use mime::{Mailbox, OutgoingEmail};
pub use render::{Rendered, Renderer};
pub use ses::{SendFailure, SesMailer};
