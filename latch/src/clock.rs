//! `Clock`: where latch reads the time, so a test moves it forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

use crate::store::from_unix_ms;

/// The time every session deadline is measured by: the system clock, which a test can move
/// forward with [`advance`](Self::advance) to expire sessions without waiting. Clones share
/// one clock.
///
/// latch uses the system clock unless the app manages a `Clock` before launch; the one a test
/// keeps a clone of then moves every instance that shares it:
///
/// ```
/// use latch::{Clock, Latch};
///
/// let clock = Clock::system();
/// let rocket = rocket::build().manage(clock.clone()).attach(Latch::in_memory());
/// // ... a request stores a session; then, instead of sleeping past `idle_timeout`:
/// clock.advance(latch::time::Duration::hours(2));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system clock.
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// The time now, to the millisecond (the precision the stores keep, so a time read back
    /// from a store equals the one written).
    pub fn now(&self) -> OffsetDateTime {
        let offset = self.offset_ms.load(Ordering::Relaxed);
        from_unix_ms(crate::now_ms().saturating_add(offset))
    }

    /// Moves this clock, and every clone of it, forward by `by` (for tests).
    pub fn advance(&self, by: time::Duration) {
        let ms = i64::try_from(by.whole_milliseconds()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms.max(0), Ordering::Relaxed);
    }
}
