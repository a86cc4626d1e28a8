//! Server-side sessions for [Rocket](https://rocket.rs), kept in SQLite or PostgreSQL through
//! sqlx.
//!
//! Each browser gets a random session ID inside a Rocket *private* cookie; the session's data
//! lives in a `sessions` table on the server; a background task purges expired rows. Handlers
//! take a [`Session`] guard and read and write typed values through [`Key`]s.
//!
//! # Getting started
//!
//! Add the dependency (both backends are on by default; see [Choosing a
//! backend](#choosing-a-backend)):
//!
//! ```toml
//! [dependencies]
//! latch = { path = "../latch/latch" }   # this repository's latch/ folder (or a git dependency)
//! rocket = { version = "0.5", features = ["secrets"] }
//! ```
//!
//! Attach the fairing, and take the guard in a handler:
//!
//! ```no_run
//! use latch::{Key, Latch, Session, SessionError};
//! use rocket::{get, launch, routes};
//!
//! const VIEWS: Key<u64> = Key::new("views");
//!
//! #[get("/")]
//! async fn index(session: Session<'_>) -> Result<String, SessionError> {
//!     let views = session.update(&VIEWS, |views| views.unwrap_or(0) + 1).await?;
//!     Ok(format!("{views} views"))
//! }
//!
//! #[launch]
//! fn rocket() -> _ {
//!     rocket::build()
//!         .attach(Latch::fairing())
//!         .mount("/", routes![index])
//! }
//! ```
//!
//! With no settings, sessions go to `sqlite://data/latch.db` (created on first start, with its
//! folder) and last an hour of inactivity, a day at most. `examples/minimal.rs` is this app,
//! ready to run: `cargo run -p latch --example minimal`.
//!
//! [`SessionError`] is a responder: a failed session operation hands its status to the app's
//! catcher for it (503 when the database is down, 409 when the session ended mid-request, 413
//! when the data would grow past its cap, 403 for a cross-site write), logging server-side
//! failures. Map it to your own error type with [`SessionError::status`] instead if you like.
//!
//! # When a guard refuses
//!
//! The guards refuse before the handler runs: [`Session`] and [`CsrfToken`] with 403 for a
//! cross-site write and 503 when the database cannot be read, [`CsrfForm`] with 403 for a
//! missing or wrong token and what `Form<T>` would answer for a form that does not parse. Rocket
//! hands each status to the app's catcher for it (`#[catch(403)]`), so register catchers to
//! give those answers your pages. A handler that wants to answer itself takes the guard's
//! `Result` instead, e.g. `Result<Session<'_>, SessionError>` or
//! `Result<CsrfForm<T>, CsrfFormError<'_>>` (see [`CsrfForm`] for an example).
//!
//! # How a session works
//!
//! - **The cookie holds only the ID.** A session ID is 256 random bits from a CSPRNG. The browser
//!   gets it inside a Rocket private cookie, encrypted and authenticated with the app's
//!   `secret_key`: it cannot read, forge or alter it. The cookie is `HttpOnly`, `SameSite=Lax`,
//!   `Path=/`, `Secure` in Rocket's release profile, and its `Max-Age` is the time left before
//!   the session ends.
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
//! - **Few round trips.** The store is wrapped in layers. [`Batched`] queues writes for a task
//!   that applies whatever is waiting as a few multi-row statements in one transaction (on
//!   SQLite: one fsync per batch); on Postgres, loads that arrive together are fetched with one
//!   query too. A [`CachedStore`] around that serves reads of recently used sessions from memory.
//! - **Expired rows are purged** by a background task in bounded batches. Until then they are
//!   invisible: every read and write checks the deadline itself.
//! - **Bad cookies are no session.** A missing, tampered, undecryptable, malformed, unknown or
//!   expired cookie is treated as a new visitor (and a stale cookie is removed). An ID the server
//!   did not issue is never adopted: a new session always gets a new ID.
//!
//! # Choosing a backend
//!
//! The scheme of `database_url` picks the store at run time; the Cargo features decide which
//! are compiled in (both by default):
//!
//! | feature | `database_url` | for |
//! | --- | --- | --- |
//! | `sqlite` | `sqlite://data/latch.db` | one app instance; nothing to run besides the app |
//! | `postgres` | `postgres://user@host/db` | any number of instances sharing sessions |
//!
//! `latch = { …, default-features = false, features = ["sqlite"] }` builds without the Postgres
//! driver, and the other way round. On SQLite the database is opened in WAL mode with
//! `synchronous = FULL`: an answered write survives a crash of the machine.
//!
//! # Configuration
//!
//! latch reads one table of Rocket's figment, `latch`: `[default.latch]` in `Rocket.toml`,
//! `ROCKET_LATCH='{idle_timeout=600}'` in the environment. Nothing outside it is read, so an
//! app's own `database_url` or `[session]` table never meets latch's. Every value is
//! range-checked at launch; a bad or unknown one stops the launch with a message naming the key
//! (`latch.idle_timeout`).
//!
//! ```toml
//! [default.latch]
//! database_url = "postgres://app@localhost/app"
//! idle_timeout = 1800
//! ```
//!
//! An app that keeps these settings elsewhere reads them itself: [`Latch::with_config`] takes a
//! [`Config`] built in code, [`Latch::with_config_from`] a function that reads one from the
//! figment at ignition. In tests, `database_url = "sqlite::memory:"` keeps sessions in memory.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `database_url` | `sqlite://data/latch.db` | where sessions are stored |
//! | `database_max_connections` | 8 | pool size (1–1,000) |
//! | `database_timeout` | 5 | seconds to wait for a connection or lock before a 503 (1–3,600) |
//! | `table` | `"sessions"` | the sessions table's name (see [`Table`]) |
//! | `schema` | unset | on Postgres, the table's schema (created if missing) |
//! | `previous_secret_keys` | `[]` | earlier `secret_key`s whose cookies still open (key rotation) |
//! | `cookie_name` | `"session"` | the session cookie (`__Host-` needs `cookie_secure`) |
//! | `idle_timeout` | 3600 | seconds without a request before a session ends |
//! | `absolute_timeout` | 86400 | seconds after creation before it ends regardless |
//! | `touch_interval` | idle / 4, at most 60 | seconds a read may go without extending the deadline |
//! | `purge_interval` | 60 | seconds between purges of expired rows |
//! | `purge_batch_size` | 1000 | rows per purge statement |
//! | `cache_capacity` | 100000 | sessions kept in memory (0: no cache), ~180 bytes each |
//! | `postgres_cache` | `true` | cache on Postgres too, kept in step by LISTEN/NOTIFY |
//! | `cookie_secure` | on in release | cookies only over HTTPS |
//! | `max_data_bytes` | 16384 | largest a session's data may grow (JSON bytes) |
//! | `csrf_cookie_name` | `"csrf"` | the cookie of [`CsrfToken`] before there is a session |
//! | `trusted_origins` | `[]` | origins besides the request's own host allowed to write (`"https://app.example.com"`) |
//!
//! [`DatabaseConfig::KEYS`] and [`SessionConfig::KEYS`] list the keys, for an app that maps
//! settings of its own onto them.
//!
//! # The schema
//!
//! latch's sessions live in a table called `sessions` unless `table` names another (and on
//! Postgres, `schema` a schema for it): set it when the app has a `sessions` table of its own.
//! latch never takes over a table it did not make: if one of that name exists without latch's
//! record of making it, the launch stops with one line saying so and naming the setting. The
//! indexes, triggers, per-user table and notification channel are named after the table (see
//! [`Table`]), so two apps' latch tables can share a database.
//!
//! Two ways to get the `sessions` table, and they never fight over sqlx's `_sqlx_migrations`:
//!
//! - **latch creates it** (the default). At start, [`Latch`] applies latch's migrations and
//!   records them in a table of its own, `_latch_migrations`. An app with migrations of its own
//!   runs them as usual; neither set sees the other.
//! - **The app's migrations include latch's.** Copy the files of `migrations/sqlite` or
//!   `migrations/postgres` from this crate into your migrations folder *before the first start*
//!   (as Rails' and Laravel's session-table generators do) and run them with `sqlx migrate run`.
//!   latch finds them recorded in `_sqlx_migrations` under the same version and checksum and
//!   leaves them alone. This works for the default table only: the files name `sessions`.
//!
//! # Signed-in sessions
//!
//! A session can know its user. After the app has checked who someone is (a password, say),
//! [`Session::sign_in`] ties the session to that user in one step: the session moves to a fresh
//! ID (the old one is dead at once, so a fixated or leaked ID gains nothing), keeps or clears
//! its anonymous data ([`SignIn::clear_data`]), and records the user's id, a random [`Handle`],
//! the time, and the [`ClientInfo`] (its `User-Agent`, truncated, and its address cut to its /24
//! or /48 network). [`Session::sign_out`] moves it to a fresh, empty, anonymous session.
//!
//! ```no_run
//! use latch::{ClientInfo, Session, SessionError, SignIn};
//! use rocket::post;
//!
//! #[post("/login")]
//! async fn login(session: Session<'_>, client: ClientInfo) -> Result<&'static str, SessionError> {
//!     // ... check the password first; then:
//!     session.sign_in(SignIn::new("user-42").client(client)).await?;
//!     Ok("signed in")
//! }
//! ```
//!
//! Signed-in sessions are indexed by user, so the app can show where someone is signed in and
//! end any of it:
//!
//! - [`Session::devices`]: the user's live sessions ([`Device`]: handle, sign-in time, last
//!   seen, client, and which one is asking). `last_seen` moves with writes and with the
//!   throttled deadline extension (`touch_interval`), never with a write per request.
//! - [`Session::revoke_device`] (by handle; another user's handle matches nothing),
//!   [`Session::revoke_other_devices`], [`Session::revoke_all_devices`].
//! - [`Session::bump_auth_epoch`]: moves the user's auth epoch forward, which ends every other
//!   session that signed in before it (what a password change should do). It deletes through
//!   the index on `user_id`, never scanning the table, and a sign-in racing it is either ended
//!   by it or recorded under the new epoch.
//! - Without the user's session at hand: [`SessionManager::user_sessions`],
//!   [`SessionManager::revoke_user`] and [`SessionManager::bump_auth_epoch`].
//!
//! An ended session is gone on its very next request, on every instance: its row is deleted,
//! each instance's cache forgets it (on Postgres through the same notifications as a logout),
//! and no write from a request already under way can bring it back, since every write names a
//! live row. Handles are drawn from the CSPRNG, not derived from the ID: showing one in a page
//! gives nobody the session. Anonymous sessions carry none of this (null columns, left out of
//! the partial index).
//!
//! # Testing an app
//!
//! Attach [`Latch::in_memory`] instead of [`Latch::fairing`] and the sessions live in an
//! in-memory SQLite database (`database_url = "sqlite::memory:"` does the same from the
//! settings), gone when the app stops; every other setting still comes from the `latch` table.
//! [`testing::session`] reads what a local client's session holds, from the store, in one call.
//!
//! # Running several instances
//!
//! Use Postgres. Every instance needs the same `secret_key` (or cookies sealed by one cannot be
//! opened by another). Each instance keeps a cache, which hears of other instances' changes
//! through a trigger and `LISTEN latch_sessions`; a cache hit first waits until every change
//! committed before it has arrived, so a logout on one instance counts at once on all. Whenever
//! the listening connection is down, the cache is bypassed. Each store names its connections
//! with an instance name of its own (in `application_name`) to tell its own changes from others';
//! [`PostgresStore::open`] does this, whatever pool it is given. On SQLite, one process must be
//! the file's only writer while the cache is on (`cache_capacity = 0` otherwise).
//!
//! # Security model
//!
//! - **What the cookie holds**: only the session ID, sealed with AES-256-GCM under a key derived
//!   from `secret_key`. The cookie itself is a bearer credential: whoever has it is the session
//!   until it ends.
//! - **What a leaked database gives away**: the data in each session, but no usable cookie: rows
//!   are keyed by SHA-256 of the ID, and the ID never touches disk or logs (`Debug` is redacted).
//! - **Fixation**: an ID the server did not issue is never adopted, and
//!   [`Session::regenerate_with`] moves the session to a new ID in the same statement that
//!   changes its data.
//! - **CSRF**: the guards refuse any state-changing request (not GET, HEAD, OPTIONS or TRACE)
//!   whose `Origin` names another host or port, or whose `Sec-Fetch-Site` is `cross-site` or
//!   `same-site` (403), unless its `Origin` is exactly one of `trusted_origins` (a front end on
//!   a sibling subdomain, or the public origin of an app behind a proxy that rewrites `Host`).
//!   Forms carry a [`CsrfToken`]: derived from the session ID when there is a session, else
//!   kept in a private cookie of its own (for the browser session), and compared in constant
//!   time. Once a request has a session only the derived token passes, so a cookie token
//!   planted beside a victim's session cookie is refused. Take the form as [`CsrfForm<T>`]
//!   and the token is checked before the handler runs: a handler cannot forget it.
//! - **Caching**: every response that used the guards carries `Cache-Control: no-store` and
//!   `Vary: Cookie`.
//! - **Key rotation**: put the old key in `previous_secret_keys` and the new one in `secret_key`.
//!   A cookie sealed with a previous key still opens, and the same response reseals it with the
//!   current key; only the current key ever seals. Drop the old key after `absolute_timeout`.
//! - **Showing a session to its owner**: [`Session::inspect`] gives the row and its deadlines
//!   with the ID and its hash cut to short prefixes inside the crate, so a page that explains
//!   the session cannot show the credential by mistake.
//! - **Left to the app**: authentication proper, TLS, rate limiting, what the app puts in a
//!   session, and HTML escaping of what it shows.
//!
//! # Bring your own store
//!
//! [`Latch::with_store`] takes any [`SessionStore`]: the six operations of the contract
//! (create, load, save, touch, rekey, delete), the purge's `delete_expired`, and the per-user
//! ones (sign in, list, revoke, bump the auth epoch). The layers
//! are stores too, each wrapping another:
//!
//! - the bundled stores, opened on a pool of your own with [`SqliteStore::open`] or
//!   [`PostgresStore::open`] (which apply the schema); each serves one write at a time;
//! - [`Batched`], which queues writes (and, on Postgres, loads) and hands every one waiting to
//!   the store in one call: `.batched()` on either bundled store, or on any store that
//!   implements [`WriteBatches`];
//! - [`CachedStore`], which keeps recently used sessions in memory: `.cached(capacity)` on a
//!   batched SQLite or Postgres store (on Postgres it also starts the listener that keeps other
//!   instances' changes out of the cache), or [`CachedStore::new`] for a store this process is
//!   the only writer of.
//!
//! The chain is the same on both backends, gives the same kind of value, and needs no import
//! but the store's:
//!
//! ```no_run
//! # async fn build() -> Result<(), Box<dyn std::error::Error>> {
//! use latch::{Latch, PostgresStore, SqliteStore};
//!
//! let pool = sqlx::SqlitePool::connect("sqlite://data/app.db?mode=rwc").await?;
//! let store = SqliteStore::open(pool).await?.batched().cached(100_000);
//! let rocket = rocket::build().attach(Latch::with_store(store));
//! # let _ = rocket;
//!
//! let pool = sqlx::PgPool::connect("postgres://app@localhost/app").await?;
//! let store = PostgresStore::open(pool).await?.batched().cached(100_000);
//! let rocket = rocket::build().attach(Latch::with_store(store));
//! # let _ = rocket;
//! # Ok(())
//! # }
//! ```
//!
//! Besides the pool's `max_connections`, a store keeps connections of its own, outside the
//! pool's count: on SQLite a writer and a reader (taken from the pool at `open`, which opens
//! others in their place); on Postgres a reader and a writer opened with the pool's settings.
//! With the cache on Postgres, the listener for other instances' changes holds one of the
//! pool's own connections for good. Count them in the database's connection limit
//! (`max_connections` on the Postgres server): an instance uses at most the pool's size plus
//! two.
//!
//! A store of your own passes the contract if it passes `latch/tests/contract.rs`; implementing
//! [`WriteBatches`] as well (one call for many writes, all or none) lets it take the batching
//! layer.

#![deny(missing_docs)]

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("latch needs a backend: enable the `sqlite` or the `postgres` feature (or both)");

mod config;
mod cookie;
pub mod csrf;
mod database;
mod error;
mod fairing;
mod form;
mod guard;
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

pub use config::{Config, ConfigError, DatabaseConfig, SessionConfig, check_range};
pub use cookie::PreviousKeys;
pub use csrf::CsrfToken;
pub use database::{Database, SetupError, open};
pub use error::{SessionError, error_chain};
pub use fairing::{ConfigReader, Latch};
pub use form::{CsrfForm, CsrfFormError};
pub use guard::{DataMut, Session};
pub use id::{IdHash, SessionId};
pub use inspect::Inspection;
pub use manager::{SessionManager, StoredSession};
#[cfg(feature = "postgres")]
pub use store::PostgresStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{
    Batched, CachedStore, Loaded, Record, Rekeyed, SessionData, SessionStore, StoreStats, Write,
    WriteBatches,
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
pub fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}
