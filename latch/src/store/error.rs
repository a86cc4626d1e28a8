//! `StoreError`: what a store of any kind reports when it fails, naming no database library.

use std::error::Error;
use std::sync::Arc;

/// The cause behind a [`StoreError`]: any error of the store's own.
pub type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// A store operation that failed. A store of any kind (SQL, a key-value server, memory) says
/// which of these it was and keeps its own error as the source, for the log; the session layer
/// turns it into a [`SessionError`](crate::SessionError), 503 or 500.
///
/// ```
/// use latch::StoreError;
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// assert!(StoreError::unavailable(refused).is_unavailable());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or is too busy; retrying later may succeed.
    #[error("the session store is unavailable")]
    Unavailable(#[source] Cause),
    /// The store answered with an error that retrying will not fix.
    #[error("the session store failed")]
    Failed(#[source] Cause),
    /// A stored session could not be read back as one (its data is not a JSON object, say).
    #[error("a stored session could not be decoded")]
    Corrupt(#[source] Cause),
}

impl StoreError {
    /// The store could not be reached or is too busy (503).
    pub fn unavailable(cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::Unavailable(Arc::from(cause.into()))
    }

    /// The store failed in a way retrying will not fix (500).
    pub fn failed(cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::Failed(Arc::from(cause.into()))
    }

    /// A stored session could not be decoded (500).
    pub fn corrupt(cause: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::Corrupt(Arc::from(cause.into()))
    }

    /// Whether retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The SQL stores' errors: out of reach or overloaded is [`StoreError::Unavailable`], anything
/// else [`StoreError::Failed`].
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            Self::unavailable(error)
        } else {
            Self::failed(error)
        }
    }
}

/// Whether an error says the database is out of reach or overloaded, rather than that a query
/// is wrong: these become 503s that go away when the database comes back.
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            // Postgres ends a connection it refuses or kills (the database is shutting down,
            // not accepting connections, …) with a FATAL error, whatever its SQLSTATE.
            #[cfg(feature = "postgres")]
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                use sqlx::postgres::PgSeverity;
                // 25006: a write reached a server that is read-only now (a primary being
                // demoted in a failover, or a standby).
                return matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)
                    || ["08", "53", "57P", "25006"]
                        .iter()
                        .any(|class| pg.code().starts_with(class));
            }
            // SQLite result codes are numbers whose low byte is the primary code:
            // BUSY, LOCKED, IOERR, FULL, CANTOPEN.
            db.code()
                .and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13 | 14))
        }
        _ => false,
    }
}

/// The batching layer's task that writes to the database has stopped (the store is shutting
/// down): reported as [`StoreError::Unavailable`].
#[derive(Debug, thiserror::Error)]
#[error("the session store's writer has stopped")]
pub(crate) struct WriterStopped;
