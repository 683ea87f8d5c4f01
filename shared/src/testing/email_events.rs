//! In memory: what SES reports about sent email.
