//! A mail transport in memory: answers with a script of outcomes (then accepts everything) and
//! keeps every message it accepted.

use crate::ports::{Mailer, SendFailure};
use jiff::Timestamp;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

pub struct ScriptedMailer<T> {
    script: Mutex<VecDeque<Result<(), SendFailure>>>,
    accepted: Mutex<Vec<T>>,
    calls: AtomicU32,
}

impl<T> Default for ScriptedMailer<T> {
    fn default() -> Self {
        Self {
            script: Mutex::new(VecDeque::new()),
            accepted: Mutex::new(Vec::new()),
            calls: AtomicU32::new(0),
        }
    }
}

impl<T: Clone> ScriptedMailer<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next calls fail with `failures`, in order.
    pub fn then_fail(self, failures: impl IntoIterator<Item = SendFailure>) -> Self {
        if let Ok(mut script) = self.script.lock() {
            script.extend(failures.into_iter().map(Err));
        }
        self
    }

    /// Every message accepted so far, in order.
    pub fn accepted(&self) -> Vec<T> {
        self.accepted.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Calls made, accepted or not.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl<T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned> Mailer
    for ScriptedMailer<T>
{
    type Message = T;

    async fn send(&self, message: &T, _now: Timestamp) -> Result<String, SendFailure> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let next = self.script.lock().ok().and_then(|mut s| s.pop_front());
        match next {
            Some(Err(failure)) => Err(failure),
            Some(Ok(())) | None => {
                if let Ok(mut accepted) = self.accepted.lock() {
                    accepted.push(message.clone());
                }
                Ok(format!("mem-{n:04}"))
            }
        }
    }
}
