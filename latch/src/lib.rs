#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("latch needs a backend: enable the `sqlite` or the `postgres` feature (or both)");

mod clock;
mod config;
mod cookie;
pub mod csrf;
mod database;
mod error;
mod fairing;
mod form;
mod guard;
#[cfg(feature = "postgres")]
mod hosts;
mod id;
pub mod inspect;
mod manager;
pub mod purge;
pub mod schema;
pub mod store;
mod table;
pub mod testing;
pub mod user;

use std::marker::PhantomData;

/// The attribute a [`SessionStore`] implementation needs on its `impl` block, re-exported so a
/// store outside this crate uses the same version.
pub use async_trait::async_trait;
/// The `time` crate latch's times are in ([`time::OffsetDateTime`]), re-exported so an app or
/// a store uses the same version.
pub use time;

pub use clock::Clock;
pub use config::{Config, ConfigError, DatabaseConfig, SessionConfig};
pub use cookie::PreviousKeys;
pub use csrf::CsrfToken;
pub use database::{Database, SetupError, open};
pub use error::SessionError;
pub(crate) use error::error_chain;
pub use fairing::{ConfigReader, Latch};
pub use form::{CsrfForm, CsrfFormError, NoFields};
pub use guard::{DataMut, Session};
pub use id::{IdHash, SessionId};
pub use inspect::Inspection;
pub use manager::{SessionManager, StoredSession};
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{
    Batched, CachedStore, ExpiredDeletion, Loaded, MemoryStore, Record, Rekeyed, SessionData,
    SessionStore, StoreError, StoreStats, UserIndex, Write, WriteBatches,
};
pub use table::Table;
pub use user::{ClientInfo, Device, Handle, Revoke, SignIn, SignedIn};

/// A typed name for one value in a session. Declare keys as constants so handlers never spell
/// string keys and every use of a key agrees on its type:
///
/// ```
/// use latch::Key;
/// const PAGE_VIEWS: Key<u64> = Key::new("page_views");
/// ```
pub struct Key<T> {
    name: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    /// The key stored under `name` in the session's JSON object.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            _type: PhantomData,
        }
    }

    /// The name it is stored under.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

/// The current time as Unix milliseconds, the unit of every stored time.
pub(crate) fn now_ms() -> i64 {
    store::unix_ms(time::OffsetDateTime::now_utc())
}
