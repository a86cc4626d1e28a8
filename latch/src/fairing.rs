//! `Latch`: the fairing that gives a Rocket app sessions in one line. At ignition it reads the
//! settings, opens the store and manages the shared state; at liftoff it starts the purge; on
//! every response that depends on a session it forbids caching.

use std::sync::Arc;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Orbit, Request, Response, Rocket};

use rocket::figment::Figment;

use crate::guard::session_was_loaded;
use crate::{
    Clock, Config, ConfigError, Database, SessionManager, SessionStore, SetupError, database,
    error_chain, purge,
};

/// Rocket makes up a `secret_key` for the run when none is set (in its debug profile; in
/// release it refuses to launch): cookies sealed with it open nowhere else, so every session
/// ends at the next restart. Say so, once, where it is read.
fn warn_without_secret_key(figment: &Figment) {
    if let Some(warning) = secret_key_warning(figment) {
        log::warn!("{warning}");
    }
}

fn secret_key_warning(figment: &Figment) -> Option<&'static str> {
    let provided = rocket::Config::try_from(figment).map(|config| config.secret_key.is_provided());
    (provided == Ok(false) && figment.profile() == rocket::Config::DEBUG_PROFILE).then_some(
        "latch: no `secret_key` is set, so Rocket made one up for this run and every session \
         ends when the app restarts: set `secret_key` (ROCKET_SECRET_KEY) to keep them",
    )
}

/// The session layer as a fairing: `rocket::build().attach(latch::Latch::fairing())`.
///
/// - **At ignition** it takes its [`Config`] (from the figment's `latch` table, or as the app
///   gave it), connects to `database_url`, applies latch's schema, opens the store (with its
///   cache) and manages a [`SessionManager`] and the [`Database`]. It logs which database it
///   opened (never a password), and warns when no `secret_key` is set (Rocket then makes one
///   up for the run, and every session ends at the next restart). A bad setting or an
///   unreachable database logs one line saying which and stops the launch. If the app already
///   manages a `SessionManager`, it is kept as it is.
/// - **At liftoff** it starts the purge task, which deletes expired rows every
///   `purge_interval` seconds until Rocket shuts down.
/// - **On each response** to a request that used the [`Session`](crate::Session) or
///   [`CsrfToken`](crate::CsrfToken) guard it adds `Cache-Control: no-store` and
///   `Vary: Cookie`, even when the only change was a throttled touch: only these guards set or
///   clear latch's cookies, and a shared cache would otherwise hand one visitor's page, or
///   their `Set-Cookie`, to the next.
///
/// ```no_run
/// use latch::Latch;
///
/// #[rocket::launch]
/// fn rocket() -> _ {
///     // Rocket.toml:  [default.latch]
///     //               database_url = "postgres://app@localhost/app"
///     rocket::build().attach(Latch::fairing())
/// }
/// ```
pub struct Latch {
    source: Source,
}

/// Where the fairing gets its configuration and store.
enum Source {
    /// The figment's `latch` table.
    Figment,
    /// A configuration the app built.
    Config(Box<Config>),
    /// A configuration the app reads from the figment its own way.
    Reader(ConfigReader),
    /// A store the app opened; the session settings from the figment's `latch` table.
    Store(Arc<dyn SessionStore>),
}

/// How an app with its own configuration layout reads latch's settings from the figment.
pub type ConfigReader = fn(&Figment) -> Result<Config, ConfigError>;

impl Latch {
    /// Sessions as the `latch` table of the figment says (`[default.latch]` in `Rocket.toml`,
    /// `ROCKET_LATCH='{…}'`); nothing outside that table is read.
    pub fn fairing() -> Self {
        Self {
            source: Source::Figment,
        }
    }

    /// Sessions as `config` says; the figment is not read.
    pub fn with_config(config: Config) -> Self {
        Self {
            source: Source::Config(Box::new(config)),
        }
    }

    /// Sessions as `read` finds them in the figment at ignition: for an app that keeps latch's
    /// settings elsewhere than the `latch` table. A [`ConfigError`] from it stops the launch
    /// with one line.
    pub fn with_config_from(read: ConfigReader) -> Self {
        Self {
            source: Source::Reader(read),
        }
    }

    /// Sessions in a [`MemoryStore`](crate::MemoryStore), gone when the app stops: for tests
    /// (see [`testing`](crate::testing)). The session settings come from the figment's `latch`
    /// table as with [`with_store`](Self::with_store); no database is opened.
    pub fn in_memory() -> Self {
        Self::with_store(crate::MemoryStore::new())
    }

    /// Sessions in a store the app built itself (on a pool of its own, say: see
    /// [`SqliteStore::open`](crate::SqliteStore::open) and
    /// [`PostgresStore::open`](crate::PostgresStore::open)). The session settings still come
    /// from the figment's `latch` table; its `database_*`, `table` and `schema` keys are neither
    /// read nor checked (the store knows its table: see
    /// [`SqliteStore::open_table`](crate::SqliteStore::open_table)).
    ///
    /// ```no_run
    /// # async fn build() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = sqlx::SqlitePool::connect("sqlite://data/app.db?mode=rwc").await?;
    /// let store = latch::SqliteStore::open(pool).await?.batched().cached(100_000);
    /// let rocket = rocket::build().attach(latch::Latch::with_store(store));
    /// # let _ = rocket;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_store(store: impl SessionStore) -> Self {
        Self {
            source: Source::Store(Arc::new(store)),
        }
    }
}

#[rocket::async_trait]
impl Fairing for Latch {
    fn info(&self) -> Info {
        Info {
            name: "latch sessions",
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        if rocket.state::<SessionManager>().is_some() {
            return Ok(rocket);
        }
        warn_without_secret_key(rocket.figment());
        let opened = async {
            let config = match &self.source {
                Source::Store(store) => {
                    let config = Config::without_database(rocket.figment())?;
                    if store.user_index().is_none() {
                        log::warn!(
                            "latch: this session store keeps no per-user index, so sessions \
                             cannot be signed in (Session::sign_in fails with a 500)"
                        );
                    }
                    let manager = SessionManager::new(Arc::clone(store), config.session)
                        .with_previous_keys(config.previous_keys);
                    return Ok((None, manager));
                }
                Source::Figment => Config::from_figment(rocket.figment())?,
                Source::Config(config) => {
                    config.validate()?;
                    (**config).clone()
                }
                Source::Reader(read) => read(rocket.figment())?,
            };
            database::open(config)
                .await
                .map(|(database, manager)| (Some(database), manager))
        };
        let opened: Result<_, SetupError> = opened.await;
        match opened {
            Ok((database, manager)) => {
                // A clock the app manages (a test's, to move time forward) measures deadlines.
                let manager = match rocket.state::<Clock>() {
                    Some(clock) => manager.with_clock(clock.clone()),
                    None => manager,
                };
                let rocket = rocket.manage(manager);
                Ok(match database {
                    Some(database) => rocket.manage::<Database>(database),
                    None => rocket,
                })
            }
            Err(error) => {
                log::error!("{}", error_chain(&error));
                Err(rocket)
            }
        }
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        match rocket.state::<SessionManager>() {
            Some(manager) => purge::start(manager, rocket.shutdown()),
            None => log::error!("session purge not started: no `SessionManager` is managed"),
        }
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        if !session_was_loaded(request) {
            return;
        }
        response.set_raw_header("Cache-Control", "no-store");
        response.adjoin_raw_header("Vary", "Cookie");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_secret_key_is_warned_of() {
        // Rocket's defaults alone: no `ROCKET_SECRET_KEY` of the environment slips in.
        let debug = Figment::from(rocket::Config::debug_default());
        let key = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";

        assert!(secret_key_warning(&debug).is_some_and(|warning| warning.contains("secret_key")));
        assert_eq!(secret_key_warning(&debug.merge(("secret_key", key))), None);
    }
}
