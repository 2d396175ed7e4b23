//! Cooperative interruption: the first Ctrl-C / SIGTERM asks the run to stop
//! launching work; whoever waits (a verify poll, a queued server) wakes up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    set: AtomicBool,
    /// The run has begun changing the estate (past the confirmation).
    changing: AtomicBool,
    notify: Notify,
}

impl Cancel {
    pub fn trigger(&self) {
        self.inner.set.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// From here on the run changes things: an interruption may leave a
    /// command in flight and the run resumable.
    pub fn mark_changing(&self) {
        self.inner.changing.store(true, Ordering::SeqCst);
    }

    /// Whether [`Cancel::mark_changing`] was called.
    pub fn changing(&self) -> bool {
        self.inner.changing.load(Ordering::SeqCst)
    }

    pub fn is_set(&self) -> bool {
        self.inner.set.load(Ordering::SeqCst)
    }

    /// Resolves once the run is interrupted.
    pub async fn wait(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// `from + by`, or a far-off instant when that is past what the clock can
/// hold (a timeout of u64::MAX seconds means "no deadline", not a panic).
pub fn deadline(from: std::time::Instant, by: std::time::Duration) -> std::time::Instant {
    from.checked_add(by).unwrap_or_else(|| {
        // About 30 years: later than any run, and representable.
        from.checked_add(std::time::Duration::from_secs(30 * 365 * 86_400))
            .unwrap_or(from)
    })
}
