//! The port of what SES reports about sent email.
