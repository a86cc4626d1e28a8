//! `Latch`: the fairing that gives a Rocket app sessions in one line. At ignition it reads the
//! settings, opens the store and manages the shared state; at liftoff it starts the purge; on
//! every response that depends on a session it forbids caching.

use std::sync::Arc;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Orbit, Request, Response, Rocket};

use crate::guard::session_was_loaded;
use crate::{Config, Database, SessionManager, SessionStore, database, error_chain, purge};

/// The session layer as a fairing: `rocket::build().attach(latch::Latch::fairing())`.
///
/// - **At ignition** it reads [`Config`] from the figment, connects to `database_url`, applies
///   latch's schema, opens the store (with its cache) and manages a [`SessionManager`] and the
///   [`Database`]. A bad setting or an unreachable database logs one line saying which and
///   stops the launch. If the app already manages a `SessionManager`, it is kept as it is.
/// - **At liftoff** it starts the purge task, which deletes expired rows every
///   `session.purge_interval` seconds until Rocket shuts down.
/// - **On each response** to a request that used the [`Session`](crate::Session) or
///   [`CsrfToken`](crate::CsrfToken) guard it adds `Cache-Control: no-store` and
///   `Vary: Cookie`, even when the only change was a throttled touch: only these guards set or
///   clear latch's cookies, and a shared cache would otherwise hand one visitor's page, or
///   their `Set-Cookie`, to the next.
pub struct Latch {
    store: Option<Arc<dyn SessionStore>>,
}

impl Latch {
    /// Sessions in the database named by `database_url`, behaving as the `session` settings
    /// say.
    pub fn fairing() -> Self {
        Self { store: None }
    }

    /// Sessions in a store the app built itself (on a pool of its own, say: see
    /// [`SqliteStore::open`](crate::SqliteStore::open) and
    /// [`PostgresStore::open`](crate::PostgresStore::open)); the `session` settings still come
    /// from the figment, and `database_*` are not read.
    pub fn with_store(store: Arc<dyn SessionStore>) -> Self {
        Self { store: Some(store) }
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
        let opened = async {
            let config = Config::from_figment(rocket.figment())?;
            match &self.store {
                Some(store) => {
                    let manager = SessionManager::new(Arc::clone(store), config.session)
                        .with_previous_keys(config.previous_keys);
                    Ok((None, manager))
                }
                None => database::open(config)
                    .await
                    .map(|(database, manager)| (Some(database), manager)),
            }
        };
        match opened.await {
            Ok((database, manager)) => {
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
