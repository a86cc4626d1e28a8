//! The `Session` request guard: a handler's typed view of its session, loaded at most once per
//! request and written through to the store when the handler changes it.

use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod users;

use crate::cookie::{self, Opened};
use crate::csrf::refuse_cross_site;
use crate::store::{Loaded, Record, Rekeyed, SessionData};
use crate::user::SignedIn;
use crate::{Key, SessionError, SessionId, SessionManager, error_chain};

/// How often one write retries after losing a version race to another app instance. Within one
/// instance writes to a session take turns (see `SessionManager::write_lock`), so retries are rare.
const MAX_WRITE_ATTEMPTS: usize = 8;

/// The current request's session.
///
/// Getting the guard costs nothing without a session cookie, and one indexed read (or a cache
/// hit) with one. Reads are served from what was loaded; where the cache may not yet have heard
/// of another instance's change, the first `get` or `exists` confirms the copy, while a handler
/// that only writes never waits for that. Every change is written to the store before the
/// method returns, so a handler that got `Ok` may tell the user it was saved.
///
/// ```no_run
/// use latch::{Key, Session, SessionError};
/// use rocket::{get, post};
///
/// const NAME: Key<String> = Key::new("name");
///
/// #[get("/hello")]
/// async fn hello(session: Session<'_>) -> Result<String, SessionError> {
///     Ok(match session.get(&NAME).await? {
///         Some(name) => format!("Hello, {name}!"),
///         None => "Hello, stranger.".into(),
///     })
/// }
///
/// #[post("/name/<name>")]
/// async fn remember(session: Session<'_>, name: String) -> Result<&'static str, SessionError> {
///     session.insert(&NAME, &name).await?; // stored (and the cookie set) before this returns
///     Ok("remembered")
/// }
///
/// #[post("/forget")]
/// async fn forget(session: Session<'_>) -> Result<&'static str, SessionError> {
///     session.destroy().await?;
///     Ok("forgotten")
/// }
/// ```
#[derive(Clone, Copy)]
pub struct Session<'r> {
    pub(crate) manager: &'r SessionManager,
    pub(crate) cookies: &'r CookieJar<'r>,
    cell: &'r SessionCell,
}

/// How [`Session::rotate_locked`] moves a session to its new ID.
#[derive(Clone, Copy)]
enum Rotation {
    /// [`SessionStore::rekey`](crate::SessionStore::rekey): the user stays or is cleared.
    Rekey,
    /// [`UserIndex::sign_in`](crate::UserIndex::sign_in): the user is set.
    SignIn,
}

/// The per-request state behind every `Session` guard of one request.
pub(crate) struct SessionCell {
    active: Mutex<Option<Active>>,
    /// Keeps two changes from the same request (say, a handler joining futures) from interleaving.
    writer: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Active {
    id: SessionId,
    record: Record,
    /// Created by this request: its ID has never been sent to a browser, so rotating it would
    /// protect nothing.
    new: bool,
    /// Known to be current. A copy from a cache that may not yet have heard of other instances'
    /// changes is not: it is read again before anything in it is shown, and a write from it is
    /// settled by the version check.
    confirmed: bool,
}

impl SessionCell {
    fn new(active: Option<Active>) -> Self {
        Self {
            active: Mutex::new(active),
            writer: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Active>> {
        // A panic elsewhere cannot leave the Option half-written; carry on with what is there.
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> Option<Active> {
        self.lock().clone()
    }

    fn set(&self, active: Option<Active>) {
        *self.lock() = active;
    }

    fn is_confirmed(&self) -> bool {
        self.lock().as_ref().is_none_or(|active| active.confirmed)
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Session<'r> {
    type Error = SessionError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let Some(manager) = request.rocket().state::<SessionManager>() else {
            return Outcome::Error((Status::InternalServerError, SessionError::NotConfigured));
        };
        // Here rather than per route, so every route that uses a session (and the CSRF guard,
        // which builds on this one) refuses cross-site writes.
        if let Err(error) = refuse_cross_site(request, manager.config()) {
            return Outcome::Error((error.status(), error));
        }
        let cookies = request.cookies();
        let loaded = request
            .local_cache_async(async { LoadedSession(Some(load(manager, cookies).await)) })
            .await;
        match loaded.0.as_ref() {
            Some(Ok(cell)) => Outcome::Success(Session {
                manager,
                cookies,
                cell,
            }),
            Some(Err(error)) => Outcome::Error((error.status(), error.clone())),
            None => Outcome::Error((Status::InternalServerError, SessionError::NotConfigured)),
        }
    }
}

/// The session this request loaded, kept for the rest of the request (`None`: the guard never
/// ran). [`NoStore`](super::no_store::NoStore) reads it: a response to a request that loaded a
/// session (or found none) depends on the session cookie.
pub(crate) struct LoadedSession(pub(crate) Option<Result<SessionCell, SessionError>>);

/// Whether the session guard ran for `request`.
pub(crate) fn session_was_loaded(request: &Request<'_>) -> bool {
    request.local_cache(|| LoadedSession(None)).0.is_some()
}

impl Sentinel for Session<'_> {
    /// Refuses to launch an app that uses the guard without managing [`SessionManager`].
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        rocket.state::<SessionManager>().is_none()
    }
}

/// Reads the session named by the request's cookie, if any, and extends its idle deadline when a
/// `touch_interval` has passed since it was last extended.
async fn load(
    manager: &SessionManager,
    cookies: &CookieJar<'_>,
) -> Result<SessionCell, SessionError> {
    let name = manager.config.cookie_name.as_str();
    let (cookie, sealed_with_previous_key) =
        match cookie::open(cookies, name, &manager.previous_keys) {
            Opened::Current(cookie) => (cookie, false),
            Opened::Previous(cookie) => (cookie, true),
            Opened::Absent => return Ok(SessionCell::new(None)),
            // Tampered, or sealed with a key that is no longer accepted: drop it.
            Opened::Unreadable => {
                remove_cookie(manager, cookies);
                return Ok(SessionCell::new(None));
            }
        };
    let Some(id) = SessionId::parse(cookie.value()) else {
        remove_cookie(manager, cookies);
        return Ok(SessionCell::new(None));
    };
    let now = manager.now();
    let hash = id.hash();
    // Unconfirmed is enough here: a handler that only writes never needs more (see `Active`).
    let Some(Loaded {
        mut record,
        confirmed,
    }) = manager.store.load_unconfirmed(&hash, now).await?
    else {
        remove_cookie(manager, cookies);
        return Ok(SessionCell::new(None));
    };

    let deadline = manager.deadline(record.created_at, now);
    let mut resealed = false;
    if deadline - record.expires_at
        >= time::Duration::milliseconds(manager.config.touch_interval_ms())
    {
        // The read still succeeds if the touch fails: the session just keeps its old deadline.
        match manager.store.touch(&hash, deadline, now).await {
            // Not moved: the session ended just now, or a request beside this one moved it.
            Ok(false) => {}
            Ok(true) => {
                record.expires_at = deadline;
                set_cookie(manager, cookies, &id, deadline, now);
                resealed = true;
            }
            Err(error) => log::warn!(
                "could not extend a session's idle deadline: {}",
                error_chain(&error)
            ),
        }
    }
    if sealed_with_previous_key && !resealed {
        // Key rotation: from now on the browser holds the cookie sealed with the current key.
        set_cookie(manager, cookies, &id, record.expires_at, now);
    }
    Ok(SessionCell::new(Some(Active {
        id,
        record,
        new: false,
        confirmed,
    })))
}

impl Session<'_> {
    /// The ID of the session this request holds now, as its cookie names it (without
    /// confirming a cached copy). For derivations such as the CSRF token.
    pub(crate) fn current_id(&self) -> Option<SessionId> {
        self.cell.lock().as_ref().map(|active| active.id.clone())
    }

    /// The session this request holds, confirmed first: for [`inspect`](Self::inspect).
    pub(crate) async fn confirmed(&self) -> Result<Option<(SessionId, Record)>, SessionError> {
        self.confirm().await?;
        Ok(self
            .cell
            .snapshot()
            .map(|active| (active.id, active.record)))
    }

    /// Whether this request has a stored session (one was loaded, or this request created one).
    ///
    /// # Errors
    ///
    /// [`SessionError::Unavailable`] (503) when the store cannot be reached while confirming a
    /// cached copy.
    pub async fn exists(&self) -> Result<bool, SessionError> {
        self.confirm().await?;
        Ok(self.cell.lock().is_some())
    }

    /// The value stored under `key`, or `None`. An error means the stored value does not have the
    /// key's type: a bug in whatever stored it.
    ///
    /// # Errors
    ///
    /// [`SessionError::Data`] when the stored value is not a `T`; [`SessionError::Unavailable`]
    /// (503) when the store cannot be reached.
    pub async fn get<T: DeserializeOwned>(&self, key: &Key<T>) -> Result<Option<T>, SessionError> {
        self.confirm().await?;
        let active = self.cell.lock();
        let Some(value) = active.as_ref().and_then(|a| a.record.data.get(key.name())) else {
            return Ok(None);
        };
        T::deserialize(value)
            .map(Some)
            .map_err(|e| SessionError::data(key.name(), e))
    }

    /// Stores `value` under `key`, creating the session (and its cookie) if there is none yet.
    ///
    /// # Errors
    ///
    /// [`SessionError::TooLarge`] (413) past `max_data_bytes`, [`SessionError::Ended`] (409) when
    /// the session ended meanwhile, [`SessionError::Unavailable`] (503) when the store cannot be
    /// reached; nothing is stored.
    pub async fn insert<T: Serialize>(&self, key: &Key<T>, value: &T) -> Result<(), SessionError> {
        let value = serde_json::to_value(value).map_err(|e| SessionError::data(key.name(), e))?;
        self.change(|data| {
            data.insert(key.name().to_owned(), value.clone());
            Ok(())
        })
        .await
    }

    /// Removes `key` from the session. Without a session, does nothing.
    ///
    /// # Errors
    ///
    /// [`SessionError::Ended`] (409) when the session ended meanwhile,
    /// [`SessionError::Unavailable`] (503) when the store cannot be reached.
    pub async fn remove<T>(&self, key: &Key<T>) -> Result<(), SessionError> {
        self.change(|data| {
            data.remove(key.name());
            Ok(())
        })
        .await
    }

    /// Replaces the value under `key` with `f(current value)` atomically: if another request
    /// changes the session first, `f` runs again on what that request stored. Returns the value
    /// stored. This is how counters count every request.
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert), and [`SessionError::Data`] when the stored value is not a `T`.
    pub async fn update<T, F>(&self, key: &Key<T>, mut f: F) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T + Send,
    {
        let updated = self
            .try_update(key, |current| Ok::<T, Infallible>(f(current)))
            .await?;
        Ok(updated.unwrap_or_else(|never| match never {}))
    }

    /// Like [`update`](Self::update), but `f` may refuse: `Ok(Err(refusal))` when it did, and
    /// then nothing was written. A refusal is decided on the stored value, never on a copy a
    /// concurrent request has changed since. For limits: a cart that holds at most ten items,
    /// a balance that may not go below zero.
    ///
    /// ```no_run
    /// # use latch::{Key, Session, SessionError};
    /// const CREDITS: Key<u32> = Key::new("credits");
    ///
    /// # async fn spend(session: Session<'_>) -> Result<(), SessionError> {
    /// let spent = session
    ///     .try_update(&CREDITS, |credits| credits.unwrap_or(0).checked_sub(1).ok_or("no credits left"))
    ///     .await?;
    /// if let Err(why) = spent {
    ///     println!("refused: {why}");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`update`](Self::update).
    pub async fn try_update<T, E, F>(
        &self,
        key: &Key<T>,
        mut f: F,
    ) -> Result<Result<T, E>, SessionError>
    where
        T: Serialize + DeserializeOwned,
        E: Send,
        F: FnMut(Option<T>) -> Result<T, E> + Send,
    {
        self.change(|data| {
            let current = data
                .get(key.name())
                .map(T::deserialize)
                .transpose()
                .map_err(|e| SessionError::data(key.name(), e))?;
            match f(current) {
                Ok(next) => {
                    let value = serde_json::to_value(&next)
                        .map_err(|e| SessionError::data(key.name(), e))?;
                    data.insert(key.name().to_owned(), value);
                    Ok(Ok(next))
                }
                // The data is left as it was: nothing is written.
                Err(refusal) => Ok(Err(refusal)),
            }
        })
        .await
    }

    /// Changes several keys in one write: `edit` gets the data with the typed accessors of
    /// [`DataMut`], and what it leaves is stored at once (or nothing, if it returns an error).
    /// Like [`update`](Self::update), it runs again on what another request stored first, and
    /// writes nothing if it changed nothing. Returns what `edit` returned.
    ///
    /// ```no_run
    /// # use latch::{Key, Session, SessionError};
    /// const THEME: Key<String> = Key::new("theme");
    /// const FONT_SIZE: Key<u8> = Key::new("font_size");
    ///
    /// # async fn save(session: Session<'_>) -> Result<(), SessionError> {
    /// session
    ///     .edit(|data| {
    ///         data.insert(&THEME, &"dark".to_owned())?;
    ///         data.insert(&FONT_SIZE, &18)
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert), and the error `edit` returned (nothing is stored then).
    pub async fn edit<R>(
        &self,
        mut edit: impl FnMut(&mut DataMut<'_>) -> Result<R, SessionError> + Send,
    ) -> Result<R, SessionError> {
        self.change(|data| edit(&mut DataMut(data))).await
    }

    /// Empties the session's data but keeps the session (and its ID).
    ///
    /// # Errors
    ///
    /// As [`remove`](Self::remove).
    pub async fn clear(&self) -> Result<(), SessionError> {
        self.change(|data| {
            data.clear();
            Ok(())
        })
        .await
    }

    /// Ends the session: deletes its row and removes the cookie. A change that another request
    /// makes to it afterwards fails with [`SessionError::Ended`] instead of reviving it.
    ///
    /// # Errors
    ///
    /// [`SessionError::Unavailable`] (503) when the store cannot be reached; the session is then
    /// still there.
    pub async fn destroy(&self) -> Result<(), SessionError> {
        let _serial = self.cell.writer.lock().await;
        if let Some(active) = self.cell.snapshot() {
            self.manager.store.delete(&active.id.hash()).await?;
            self.cell.set(None);
        }
        remove_cookie(self.manager, self.cookies);
        Ok(())
    }

    /// Moves the session to a new ID and sends the browser the new cookie; the old ID is dead
    /// from this moment. Call it whenever privilege changes, so an ID that leaked before cannot
    /// ride along. Without a session, does nothing. See [`regenerate_with`](Self::regenerate_with)
    /// to change the data in the same step, as a login must.
    ///
    /// # Errors
    ///
    /// As [`regenerate_with`](Self::regenerate_with).
    pub async fn regenerate(&self) -> Result<(), SessionError> {
        self.regenerate_with(|_| Ok(())).await
    }

    /// Gives the session a new ID *and* applies `edit` to its data in one step: one statement
    /// moves the row to the new ID with the new data, so at no moment does the old ID show the
    /// changed data, and if the step fails nothing changed under the old ID. This is what a
    /// login does: `session.regenerate_with(|data| data.insert(&USER, &name))`.
    ///
    /// Without a session, a new one is created with what `edit` leaves (if anything); its ID is
    /// fresh anyway. Like [`update`](Self::update), `edit` runs again on the current data if
    /// another request changed the session first. Returns what `edit` returned.
    ///
    /// # Errors
    ///
    /// [`SessionError::Ended`] if the session ended meanwhile (nothing is stored), the error
    /// `edit` returned, [`SessionError::TooLarge`], or a store error.
    pub async fn regenerate_with<R>(
        &self,
        mut edit: impl FnMut(&mut DataMut<'_>) -> Result<R, SessionError>,
    ) -> Result<R, SessionError> {
        let _serial = self.cell.writer.lock().await;
        let active = match self.cell.snapshot() {
            Some(active) if !active.new => active,
            // No ID a browser has seen: a plain change has nothing to rotate.
            _ => return self.change_locked(|data| edit(&mut DataMut(data))).await,
        };
        self.rotate_locked(active, Rotation::Rekey, |data, _| edit(&mut DataMut(data)))
            .await
    }

    /// Moves `active` to a fresh ID with the data and user that `edit` leaves, in one statement
    /// (see [`regenerate_with`](Self::regenerate_with)); `edit` runs again on the current state
    /// if another request changed the session first. For a caller that holds the cell's writer
    /// lock.
    async fn rotate_locked<R>(
        &self,
        active: Active,
        rotation: Rotation,
        mut edit: impl FnMut(&mut SessionData, &mut Option<SignedIn>) -> Result<R, SessionError>,
    ) -> Result<R, SessionError> {
        let old = active.id.hash();
        let _turn = self.manager.write_lock(&old).lock().await;
        let now = self.manager.now();
        let mut current = active.record;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let mut data = current.data.clone();
            let mut user = current.user.clone();
            let outcome = edit(&mut data, &mut user)?;
            let mut next = self.next_record(&current, data, now)?;
            next.user = user;
            loop {
                let id = SessionId::generate();
                let store = &self.manager.store;
                let moved = match rotation {
                    Rotation::Rekey => store.rekey(&old, &id.hash(), &next, now).await?,
                    Rotation::SignIn => {
                        self.manager
                            .users()?
                            .sign_in(Some(&old), &id.hash(), &next, now)
                            .await?
                    }
                };
                match moved {
                    Rekeyed::Done => {
                        set_cookie(self.manager, self.cookies, &id, next.expires_at, now);
                        self.cell.set(Some(Active {
                            id,
                            record: next,
                            new: true,
                            confirmed: true,
                        }));
                        return Ok(outcome);
                    }
                    Rekeyed::IdTaken => continue,
                    Rekeyed::Gone => break,
                }
            }
            // Another request changed the session (read again and redo the edit) or ended it.
            match self.manager.store.load(&old, now).await? {
                Some(fresh) => current = fresh,
                None => return Err(self.ended()),
            }
        }
        Err(SessionError::Contended)
    }

    /// Reads the session again if what this request holds is an unconfirmed copy, so nothing
    /// is shown from a session another instance changed or ended before this request.
    async fn confirm(&self) -> Result<(), SessionError> {
        if self.cell.is_confirmed() {
            return Ok(());
        }
        let _serial = self.cell.writer.lock().await;
        self.confirm_locked().await
    }

    /// [`confirm`](Self::confirm), for a caller that holds the cell's writer lock.
    async fn confirm_locked(&self) -> Result<(), SessionError> {
        let Some(active) = self.cell.snapshot().filter(|active| !active.confirmed) else {
            return Ok(());
        };
        match self
            .manager
            .store
            .load(&active.id.hash(), self.manager.now())
            .await?
        {
            Some(record) => self.cell.set(Some(Active {
                record,
                confirmed: true,
                ..active
            })),
            // It ended before this request could see it: the request has no session.
            None => {
                self.cell.set(None);
                remove_cookie(self.manager, self.cookies);
            }
        }
        Ok(())
    }

    /// Applies `edit` to the session's data and writes the result, retrying on a version race.
    /// Without a session, creates one only if `edit` leaves something to store.
    async fn change<R>(
        &self,
        edit: impl FnMut(&mut SessionData) -> Result<R, SessionError>,
    ) -> Result<R, SessionError> {
        let _serial = self.cell.writer.lock().await;
        self.change_locked(edit).await
    }

    /// [`change`](Self::change), for a caller that holds the cell's writer lock.
    async fn change_locked<R>(
        &self,
        mut edit: impl FnMut(&mut SessionData) -> Result<R, SessionError>,
    ) -> Result<R, SessionError> {
        let now = self.manager.now();
        if let Some(active) = self.cell.snapshot() {
            return self.change_existing(active, &mut edit, now).await;
        }
        let mut data = SessionData::new();
        let outcome = edit(&mut data)?;
        if !data.is_empty() {
            self.check_size(&data)?;
            self.create(data, now).await?;
        }
        Ok(outcome)
    }

    /// The record that follows `current` when `data` is written at `now`: the next version,
    /// the idle deadline moved forward. Refuses data past `max_data_bytes`.
    fn next_record(
        &self,
        current: &Record,
        data: SessionData,
        now: time::OffsetDateTime,
    ) -> Result<Record, SessionError> {
        self.check_size(&data)?;
        Ok(Record {
            data,
            version: current.version + 1,
            created_at: current.created_at,
            expires_at: self.manager.deadline(current.created_at, now),
            user: current.user.clone(),
        })
    }

    /// Refuses data whose JSON form is longer than `max_data_bytes`.
    fn check_size(&self, data: &SessionData) -> Result<(), SessionError> {
        let limit = self.manager.config.max_data_bytes;
        let mut counter = ByteCounter(0);
        serde_json::to_writer(&mut counter, data).map_err(|e| SessionError::data("*", e))?;
        if counter.0 > limit {
            return Err(SessionError::TooLarge { limit });
        }
        Ok(())
    }

    /// [`change`](Self::change) for a request that holds a session. A session that turns out to
    /// have ended is [`SessionError::Ended`], whether this request had a confirmed copy or a
    /// cached one that had not heard of the logout yet: a write never starts a new session in
    /// place of one that was logged out under it.
    async fn change_existing<R>(
        &self,
        active: Active,
        edit: &mut impl FnMut(&mut SessionData) -> Result<R, SessionError>,
        now: time::OffsetDateTime,
    ) -> Result<R, SessionError> {
        let hash = active.id.hash();
        let _turn = self.manager.write_lock(&hash).lock().await;
        let mut current = active.record;
        let mut confirmed = active.confirmed;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let mut data = current.data.clone();
            let outcome = edit(&mut data)?;
            let unchanged = data == current.data;
            if unchanged && confirmed {
                self.cell.set(Some(Active {
                    record: current,
                    confirmed,
                    ..active
                }));
                return Ok(outcome);
            }
            if !unchanged {
                let next = self.next_record(&current, data, now)?;
                if self.manager.store.save(&hash, &next, now).await? {
                    set_cookie(self.manager, self.cookies, &active.id, next.expires_at, now);
                    self.cell.set(Some(Active {
                        record: next,
                        confirmed: true,
                        ..active
                    }));
                    return Ok(outcome);
                }
            }
            // Someone else wrote (or ended the session) since it was read, or the outcome came
            // from an unconfirmed copy: read again.
            match self.manager.store.load(&hash, now).await? {
                Some(fresh) => current = fresh,
                None => return Err(self.ended()),
            }
            confirmed = true;
        }
        Err(SessionError::Contended)
    }

    /// Stores a new session under a fresh ID and sends its cookie.
    async fn create(
        &self,
        data: SessionData,
        now: time::OffsetDateTime,
    ) -> Result<(), SessionError> {
        let record = Record {
            data,
            version: 0,
            created_at: now,
            expires_at: self.manager.deadline(now, now),
            user: None,
        };
        loop {
            let id = SessionId::generate();
            if self.manager.store.create(&id.hash(), &record).await? {
                set_cookie(self.manager, self.cookies, &id, record.expires_at, now);
                self.cell.set(Some(Active {
                    id,
                    record,
                    new: true,
                    confirmed: true,
                }));
                return Ok(());
            }
        }
    }

    /// Forgets a session that ended under this request's feet.
    fn ended(&self) -> SessionError {
        self.cell.set(None);
        remove_cookie(self.manager, self.cookies);
        SessionError::Ended
    }
}

fn set_cookie(
    manager: &SessionManager,
    cookies: &CookieJar<'_>,
    id: &SessionId,
    expires_at: time::OffsetDateTime,
    now: time::OffsetDateTime,
) {
    let remaining = (expires_at - now).max(time::Duration::ZERO);
    cookie::seal(
        cookies,
        &manager.config.cookie_name,
        id.encode(),
        manager.config.cookie_secure,
        Some(remaining),
    );
}

fn remove_cookie(manager: &SessionManager, cookies: &CookieJar<'_>) {
    cookie::remove(cookies, &manager.config.cookie_name);
}

/// Counts the bytes written to it, so a size check allocates nothing.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A session's data while [`Session::edit`], [`Session::regenerate_with`] or
/// [`Session::sign_in_with`] changes it, with the typed accessors of [`Session`].
pub struct DataMut<'a>(&'a mut SessionData);

impl DataMut<'_> {
    /// The value under `key`, or `None`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Data`] if the stored value does not have the key's type.
    pub fn get<T: DeserializeOwned>(&self, key: &Key<T>) -> Result<Option<T>, SessionError> {
        self.0
            .get(key.name())
            .map(T::deserialize)
            .transpose()
            .map_err(|e| SessionError::data(key.name(), e))
    }

    /// Stores `value` under `key`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Data`] if `value` cannot be serialized.
    pub fn insert<T: Serialize>(&mut self, key: &Key<T>, value: &T) -> Result<(), SessionError> {
        let value = serde_json::to_value(value).map_err(|e| SessionError::data(key.name(), e))?;
        self.0.insert(key.name().to_owned(), value);
        Ok(())
    }

    /// Removes `key`.
    pub fn remove<T>(&mut self, key: &Key<T>) {
        self.0.remove(key.name());
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}
