//! `SessionManager`: the session layer's shared state (the store, the settings, the keys of a
//! rotation), kept in Rocket's managed state for the guards to find.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::store::SessionData;
use crate::user::{Device, Revoke, SignedIn};
use crate::{Clock, IdHash, PreviousKeys, SessionConfig, SessionError, SessionStore, UserIndex};

/// Serializes writes to one session within this process, so parallel requests on a session take
/// turns instead of failing each other's version checks over and over. Striped by ID hash: a
/// fixed set of locks, no per-session bookkeeping, and two sessions share a lock only by chance.
const WRITE_LOCK_STRIPES: usize = 1024;

/// A session as stored, read by [`SessionManager::session_in`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoredSession {
    /// Its data, a JSON object.
    pub data: SessionData,
    /// Who it is signed in as, if anyone.
    pub user: Option<SignedIn>,
}

impl StoredSession {
    /// The value under `key`, or `None`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Data`] if the stored value does not have the key's type.
    pub fn get<T: serde::de::DeserializeOwned>(
        &self,
        key: &crate::Key<T>,
    ) -> Result<Option<T>, SessionError> {
        self.data
            .get(key.name())
            .map(T::deserialize)
            .transpose()
            .map_err(|e| SessionError::data(key.name(), e))
    }
}

/// The session layer's shared state: the store and the settings.
///
/// [`Latch`](crate::Latch) builds one and puts it in Rocket's managed state; an app that builds
/// its own (to open the store before Rocket starts, say) manages it itself, and the fairing
/// keeps it.
pub struct SessionManager {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) config: SessionConfig,
    pub(crate) previous_keys: PreviousKeys,
    clock: Clock,
    write_locks: Box<[tokio::sync::Mutex<()>]>,
}

impl SessionManager {
    /// Sessions kept in `store`, behaving as `config` says.
    pub fn new(store: Arc<dyn SessionStore>, config: SessionConfig) -> Self {
        Self {
            store,
            config,
            previous_keys: PreviousKeys::default(),
            clock: Clock::system(),
            write_locks: (0..WRITE_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// Also opens cookies sealed with these earlier keys (see [`PreviousKeys`]).
    #[must_use]
    pub fn with_previous_keys(mut self, keys: PreviousKeys) -> Self {
        self.previous_keys = keys;
        self
    }

    /// Measures deadlines by `clock` instead of the system clock (see [`Clock`]).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock deadlines are measured by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The time now, as this manager's [`Clock`] reads it.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The earlier keys whose cookies still open.
    pub fn previous_keys(&self) -> &PreviousKeys {
        &self.previous_keys
    }

    /// The store sessions live in.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The settings in force.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// What the session named by the cookies in `jar` holds now, read from the store (never a
    /// cached copy), or `None` when the jar names no live session. For tests and tools:
    /// Rocket's local client's `cookies()` is such a jar (see [`testing`](crate::testing)); a
    /// handler takes the [`Session`](crate::Session) guard instead.
    ///
    /// # Errors
    ///
    /// [`SessionError`] when the store fails.
    pub async fn session_in(
        &self,
        jar: &rocket::http::CookieJar<'_>,
    ) -> Result<Option<StoredSession>, SessionError> {
        let cookie = match crate::cookie::open(jar, &self.config.cookie_name, &self.previous_keys) {
            crate::cookie::Opened::Current(cookie) | crate::cookie::Opened::Previous(cookie) => {
                cookie
            }
            crate::cookie::Opened::Unreadable | crate::cookie::Opened::Absent => return Ok(None),
        };
        let Some(id) = crate::SessionId::parse(cookie.value()) else {
            return Ok(None);
        };
        let record = self.store.load(&id.hash(), self.now()).await?;
        Ok(record.map(|record| StoredSession {
            data: record.data,
            user: record.user,
        }))
    }

    /// The live sessions of `user_id`, in the order they signed in: for an admin page, or a
    /// request without the user's session.
    ///
    /// # Errors
    ///
    /// [`SessionError`] when the store fails.
    pub async fn user_sessions(&self, user_id: &str) -> Result<Vec<Device>, SessionError> {
        Ok(self
            .users()?
            .user_sessions(user_id, None, self.now())
            .await?)
    }

    /// Signs `user_id` out everywhere (an account locked by an admin, say). Returns how many
    /// sessions ended.
    ///
    /// # Errors
    ///
    /// [`SessionError`] when the store fails; then none ended.
    pub async fn revoke_user(&self, user_id: &str) -> Result<usize, SessionError> {
        Ok(self.users()?.revoke(user_id, Revoke::All).await?.len())
    }

    /// Moves `user_id`'s auth epoch forward, ending every session of theirs (a password reset
    /// by e-mail, say, where no session of the user's is at hand). Returns how many ended.
    ///
    /// # Errors
    ///
    /// [`SessionError`] when the store fails; then none ended.
    pub async fn bump_auth_epoch(&self, user_id: &str) -> Result<usize, SessionError> {
        Ok(self.users()?.bump_auth_epoch(user_id, None).await?.len())
    }

    /// The store's per-user index, which signing in, devices and revoking need.
    pub(crate) fn users(&self) -> Result<&dyn UserIndex, SessionError> {
        self.store.user_index().ok_or(SessionError::NoUserIndex)
    }

    pub(crate) fn write_lock(&self, id: &IdHash) -> &tokio::sync::Mutex<()> {
        let stripe = usize::from(u16::from_le_bytes([id.0[0], id.0[1]])) % self.write_locks.len();
        &self.write_locks[stripe]
    }

    /// When a session created at `created_at` and used at `now` should end.
    pub(crate) fn deadline(
        &self,
        created_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        let idle = later_by(now, self.config.idle_timeout_ms());
        let absolute = later_by(created_at, self.config.absolute_timeout_ms());
        idle.min(absolute)
    }
}

/// `time` plus `ms` milliseconds, saturating at the last instant `time` can represent.
pub(crate) fn later_by(time: OffsetDateTime, ms: i64) -> OffsetDateTime {
    time.saturating_add(time::Duration::milliseconds(ms))
}
