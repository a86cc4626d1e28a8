//! The walkthrough's accounts, for its "Real accounts" step: usernames and argon2id password
//! hashes in the app's own tables, next to latch's `sessions`. Signing in is latch's job
//! ([`latch::Session::sign_in`]); this module only says who someone is.

pub mod password;
pub mod schema;
pub mod throttle;

use latch::Database;
use rocket::fairing::AdHoc;

pub use throttle::{Throttle, ThrottleConfig};

/// At ignition, on the database latch opened (attach it after [`latch::Latch`]): creates or
/// updates the app's tables and manages the sign-in [`Throttle`] the `accounts` settings
/// describe.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Accounts", |rocket| async {
        let config = match ThrottleConfig::from_figment(rocket.figment()) {
            Ok(config) => config,
            Err(error) => {
                log::error!("{error}");
                return Err(rocket);
            }
        };
        let Some(database) = rocket.state::<Database>() else {
            log::error!("the accounts step needs the database latch opens");
            return Err(rocket);
        };
        if let Err(error) = schema::apply(database).await {
            log::error!("could not create the walkthrough's tables: {error}");
            return Err(rocket);
        }
        // Ready before the first sign-in (see `password::prepare`); a failed task only means
        // the first unknown username pays for it.
        let _ = rocket::tokio::task::spawn_blocking(password::prepare).await;
        Ok(rocket.manage(Throttle::new(config)))
    })
}

/// Runs `$body` with `$pool` bound to whichever pool `$database` holds: the same SQL serves
/// both backends (`$n` is a numbered parameter in SQLite too).
macro_rules! with_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            latch::Database::Sqlite($pool) => $body,
            latch::Database::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
}

impl Account {
    /// The user id its sessions are signed in under.
    pub fn user_id(&self) -> String {
        self.id.to_string()
    }
}

/// The key usernames are unique under: two that differ only in case are one account.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// Why an account could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("that username is taken")]
    Taken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Stores a new account; the username must already be checked and the password hashed.
///
/// # Errors
///
/// [`RegisterError::Taken`] when the username (in any case) is in use.
pub async fn register(
    database: &Database,
    username: &str,
    password_hash: &str,
    now: i64,
) -> Result<Account, RegisterError> {
    const INSERT: &str = "
        insert into accounts (username, username_key, password_hash, created_at)
        values ($1, $2, $3, $4)
        on conflict (username_key) do nothing
        returning id, username, password_hash";
    let key = username_key(username);
    let created: Option<Account> = with_pool!(database, pool => {
        sqlx::query_as(INSERT)
            .bind(username)
            .bind(&key)
            .bind(password_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
    });
    created.ok_or(RegisterError::Taken)
}

/// The account with this username (in any case), if any.
///
/// # Errors
///
/// The database's error.
pub async fn find_by_username(
    database: &Database,
    username: &str,
) -> Result<Option<Account>, sqlx::Error> {
    const FIND: &str = "select id, username, password_hash from accounts where username_key = $1";
    let key = username_key(username);
    with_pool!(database, pool => sqlx::query_as(FIND).bind(&key).fetch_optional(pool).await)
}

/// The account with this id, if any.
///
/// # Errors
///
/// The database's error.
pub async fn find_by_id(database: &Database, id: i64) -> Result<Option<Account>, sqlx::Error> {
    const FIND: &str = "select id, username, password_hash from accounts where id = $1";
    with_pool!(database, pool => sqlx::query_as(FIND).bind(id).fetch_optional(pool).await)
}

/// Replaces the account's password hash.
///
/// # Errors
///
/// The database's error.
pub async fn set_password_hash(
    database: &Database,
    id: i64,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    const UPDATE: &str = "update accounts set password_hash = $2 where id = $1";
    with_pool!(database, pool => {
        sqlx::query(UPDATE).bind(id).bind(password_hash).execute(pool).await?;
    });
    Ok(())
}
