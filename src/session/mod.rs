//! The session layer: everything latch knows about sessions, and nothing about the pages that
//! use them. Lift this folder into another Rocket app, give it a [`SessionStore`] and a
//! [`SessionConfig`], and handlers can take a [`Session`] guard.
//!
//! # How a session works
//!
//! - **The cookie holds only the ID.** A session ID is 256 random bits from a CSPRNG. The browser
//!   gets it inside a Rocket *private* cookie, encrypted and authenticated with the app's
//!   `secret_key`: it cannot read, forge or alter it. The cookie is `HttpOnly`, `SameSite=Lax`,
//!   `Path=/`, and its `Max-Age` is the time left before the session ends.
//! - **The data lives on the server**, in a `sessions` table, as a JSON object. The table is keyed
//!   by the SHA-256 of the ID, so a leaked database cannot be replayed as cookies.
//! - **Nothing is stored until something is stored.** A visitor who only reads gets no cookie and
//!   no row, and a request without a cookie never touches the database.
//! - **Two timeouts, both enforced by the server.** A session ends after `idle_timeout` seconds
//!   without use, and `absolute_timeout` seconds after it was created, whichever comes first.
//!   A read extends the idle deadline only once per `touch_interval`, so reads do not turn into
//!   writes.
//! - **Writes happen when the handler asks**, before the response is sent: when `insert` returns
//!   `Ok`, the row is committed. Each write compares the version it read with the stored one
//!   and, if another request got there first, re-reads and re-applies its change, so concurrent
//!   requests never lose each other's updates; [`Session::update`] gives an atomic
//!   read-modify-write. A change to a session that was destroyed meanwhile is refused
//!   ([`SessionError::Ended`]) rather than bringing the session back.
//! - **The ID rotates on privilege change.** [`Session::regenerate_with`] moves the session to a
//!   fresh ID and changes its data in one statement: the old ID stops working at once and never
//!   shows the new data. Call it at login.
//! - **Bounded.** A write that would grow the data past `max_data_bytes` is refused
//!   ([`SessionError::TooLarge`]) and stores nothing.
//! - **Few round trips.** Writes are queued for a writer task that applies whatever is waiting
//!   as a few multi-row statements in one transaction (on SQLite: one fsync per batch; see
//!   `store/batch.rs`). On SQLite, where this process is the only writer, a [`CachedStore`]
//!   serves reads of recently used sessions from memory. On Postgres, loads that arrive together
//!   are fetched with one query, and the cache (`postgres_cache`) is kept in step with other
//!   instances by notifications, waiting for them before a hit is shown (`store/listen.rs`); a
//!   write from a hit needs no wait, since its version check catches a stale copy.
//! - **Expired rows are purged** by a background task ([`purge::fairing`]) in bounded batches.
//!   Until then they are invisible: every read and write checks the deadline itself.
//! - **Bad cookies are no session.** A missing, tampered, undecryptable, malformed, unknown or
//!   expired cookie is treated as a new visitor (and a stale cookie is removed). An ID the server
//!   did not issue is never adopted: a new session always gets a new ID. During a key rotation a
//!   cookie sealed with one of the [`PreviousKeys`] still opens, and is resealed with the current
//!   key; only the current key ever seals.
//! - **Cross-site requests change nothing.** The guards refuse a state-changing request that a
//!   browser marks as cross-site ([`csrf::refuse_cross_site`]), forms carry a [`CsrfToken`], and
//!   every response that depends on the session is marked `no-store` ([`no_store::NoStore`]).

mod config;
mod cookie;
pub mod csrf;
mod error;
mod guard;
mod id;
pub mod no_store;
pub mod purge;
pub mod store;

use std::marker::PhantomData;
use std::sync::Arc;

pub use config::{ConfigError, SessionConfig, check_range};
pub use cookie::PreviousKeys;
pub use csrf::CsrfToken;
pub use error::{SessionError, error_chain};
pub use guard::{DataMut, Session};
pub use id::{IdHash, SessionId};
pub use store::{
    CachedStore, Loaded, PostgresStore, Record, Rekeyed, SessionData, SessionStore, SqliteStore,
    StoreStats,
};

/// Serializes writes to one session within this process, so parallel requests on a session take
/// turns instead of failing each other's version checks over and over. Striped by ID hash: a
/// fixed set of locks, no per-session bookkeeping, and two sessions share a lock only by chance.
const WRITE_LOCK_STRIPES: usize = 1024;

/// The session layer's shared state: the store and the settings. Put it in Rocket's managed
/// state (`rocket.manage(Sessions::new(..))`) and attach [`purge::fairing`].
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    config: SessionConfig,
    previous_keys: PreviousKeys,
    write_locks: Box<[tokio::sync::Mutex<()>]>,
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, config: SessionConfig) -> Self {
        Self {
            store,
            config,
            previous_keys: PreviousKeys::default(),
            write_locks: (0..WRITE_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Also opens cookies sealed with these earlier keys (see [`PreviousKeys`]).
    pub fn with_previous_keys(mut self, keys: PreviousKeys) -> Self {
        self.previous_keys = keys;
        self
    }

    pub fn previous_keys(&self) -> &PreviousKeys {
        &self.previous_keys
    }

    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    fn write_lock(&self, id: &IdHash) -> &tokio::sync::Mutex<()> {
        let stripe = usize::from(u16::from_le_bytes([id.0[0], id.0[1]])) % self.write_locks.len();
        &self.write_locks[stripe]
    }

    /// When a session created at `created_at` and used at `now` should end.
    fn deadline(&self, created_at: i64, now: i64) -> i64 {
        let idle = now.saturating_add(self.config.idle_timeout_ms());
        let absolute = created_at.saturating_add(self.config.absolute_timeout_ms());
        idle.min(absolute)
    }
}

/// A typed name for one value in a session. Declare keys as constants so handlers never spell
/// string keys and every use of a key agrees on its type:
///
/// ```
/// use latch::session::Key;
/// const PAGE_VIEWS: Key<u64> = Key::new("page_views");
/// ```
pub struct Key<T> {
    name: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            _type: PhantomData,
        }
    }

    pub const fn name(&self) -> &'static str {
        self.name
    }
}

/// The current time as Unix milliseconds, the unit of every stored time.
pub fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}
