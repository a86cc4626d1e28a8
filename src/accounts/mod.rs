//! The walkthrough's accounts, for its "Real accounts" step: usernames and argon2id password
//! hashes in the app's own tables, next to latch's `sessions`. Signing in is latch's job
//! ([`latch::Session::sign_in`]); this module only says who someone is.

pub mod config;
pub mod password;
pub mod schema;
pub mod throttle;
pub mod username;

use latch::Database;
use rocket::fairing::AdHoc;

pub use config::AccountsConfig;
pub use password::HashSlots;
pub use throttle::Throttle;
pub use username::Username;

/// At ignition, on the database latch opened (attach it after [`latch::Latch`]): creates or
/// updates the app's tables and manages the [`Throttle`] and the [`HashSlots`] the `accounts`
/// settings describe.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Accounts", |rocket| async {
        let config = match AccountsConfig::from_figment(rocket.figment()) {
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
        // The walkthrough keeps the `database_*` keys at the top level.
        let reached = match latch::DatabaseConfig::from_figment(rocket.figment()) {
            Ok(config) => migrations_database(&config, database).await,
            Err(error) => Err(error.into()),
        };
        let migrations = match reached {
            Ok(migrations) => migrations,
            Err(error) => {
                log::error!("could not reach the database for the walkthrough's tables: {error}");
                return Err(rocket);
            }
        };
        if let Err(error) = schema::apply(&migrations).await {
            log::error!("could not create the walkthrough's tables: {error}");
            return Err(rocket);
        }
        if let Err(error) = backfill(&migrations).await {
            log::error!("could not update the walkthrough's accounts: {error}");
            return Err(rocket);
        }
        let hashing = match HashSlots::new(config.concurrent_hashes(), config.hash_wait()) {
            Ok(hashing) => hashing,
            Err(error) => {
                log::error!("{error}");
                return Err(rocket);
            }
        };
        // Ready before the first sign-in (see `password::prepare`); a failed job only means
        // the first unknown username pays for it.
        let _ = hashing.run(password::prepare).await;
        Ok(rocket.manage(Throttle::new(config)).manage(hashing))
    })
}

/// Where the app's migrations run: the database latch opened, or, with `database_direct_url`
/// set, a connection past the pooler (sqlx's migrator holds an advisory lock for its session,
/// which a transaction pooler would strand on a server connection others then use).
///
/// # Errors
///
/// [`latch::SetupError`] when the direct URL does not connect.
pub async fn migrations_database(
    config: &latch::DatabaseConfig,
    database: &Database,
) -> Result<Database, latch::SetupError> {
    if config.direct_url.is_none() {
        return Ok(database.clone());
    }
    Database::connect(&config.for_migrations()).await
}

/// Runs `$body` with `$pool` bound to whichever pool `$database` holds: the same SQL serves
/// both backends (`$n` is a numbered parameter in SQLite too).
///
/// On Postgres `$pool` is a transaction of its own, and the statements in `$body` are unnamed
/// (`persistent(false)`): `database_url` may lead to a transaction pooler (PgBouncer in
/// transaction mode), which hands each transaction whichever server connection is free, so a
/// named statement, or one parsed and executed in two exchanges outside a transaction, could
/// meet another connection. Accounts are read at sign-in and registration only: the extra
/// round trips are nothing beside a password hash.
macro_rules! with_pool {
    ($database:expr, $pool:ident => $body:expr) => {
        match $database {
            latch::Database::Sqlite($pool) => $body,
            latch::Database::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                let $pool = &mut *transaction;
                let outcome = $body;
                transaction.commit().await?;
                outcome
            }
        }
    };
}
pub(crate) use with_pool;

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Account {
    /// The row's key: sequential, so it never leaves the database.
    pub id: i64,
    /// The opaque id its sessions are signed in under (random; says nothing of how many
    /// accounts there are).
    pub public_id: String,
    pub username: String,
    pub password_hash: String,
}

impl Account {
    /// The user id its sessions are signed in under.
    pub fn user_id(&self) -> &str {
        &self.public_id
    }
}

/// A fresh opaque account id: 16 bytes from the CSPRNG, URL-safe base64.
fn new_public_id() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why an account could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("that username is taken, or looks like one that is")]
    Taken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Whether an account has this username, or one that looks like it (the same key or the same
/// skeleton): registration asks before it spends a hash on a name it would refuse.
///
/// # Errors
///
/// The database's error.
pub async fn is_taken(database: &Database, username: &Username) -> Result<bool, sqlx::Error> {
    const TAKEN: &str = "
        select count(*) from accounts where username_key = $1 or username_skeleton = $2";
    let count: i64 = with_pool!(database, pool => {
        sqlx::query_scalar(TAKEN)
            .bind(username.key())
            .bind(username.skeleton())
            .persistent(false)
            .fetch_one(pool)
            .await?
    });
    Ok(count > 0)
}

/// Stores a new account; the password must already be checked and hashed. Both unique keys are
/// enforced by the table, so of two registrations that race for one name (or two look-alikes)
/// exactly one succeeds.
///
/// # Errors
///
/// [`RegisterError::Taken`] when the username, or one that looks like it, is in use.
pub async fn register(
    database: &Database,
    username: &Username,
    password_hash: &str,
    now: i64,
) -> Result<Account, RegisterError> {
    const INSERT: &str = "
        insert into accounts (public_id, username, username_key, username_skeleton,
            password_hash, created_at)
        values ($1, $2, $3, $4, $5, $6)
        on conflict do nothing
        returning id, public_id, username, password_hash";
    let created: Option<Account> = with_pool!(database, pool => {
        sqlx::query_as(INSERT)
            .bind(new_public_id())
            .bind(username.as_str())
            .bind(username.key())
            .bind(username.skeleton())
            .bind(password_hash)
            .bind(now)
            .persistent(false)
            .fetch_optional(pool)
            .await?
    });
    created.ok_or(RegisterError::Taken)
}

/// Deletes an account (a registration that could not finish).
///
/// # Errors
///
/// The database's error.
pub async fn delete(database: &Database, id: i64) -> Result<(), sqlx::Error> {
    const DELETE: &str = "delete from accounts where id = $1";
    with_pool!(database, pool => {
        sqlx::query(DELETE).bind(id).persistent(false).execute(pool).await?;
    });
    Ok(())
}

/// The account with this username (compared by its key), if any.
///
/// # Errors
///
/// The database's error.
pub async fn find_by_username(
    database: &Database,
    username: &Username,
) -> Result<Option<Account>, sqlx::Error> {
    const FIND: &str = "
        select id, public_id, username, password_hash from accounts where username_key = $1";
    with_pool!(database, pool => {
        sqlx::query_as(FIND).bind(username.key()).persistent(false).fetch_optional(pool).await
    })
}

/// The account with this opaque id (a session's user id), if any.
///
/// # Errors
///
/// The database's error.
pub async fn find_by_public_id(
    database: &Database,
    public_id: &str,
) -> Result<Option<Account>, sqlx::Error> {
    const FIND: &str = "
        select id, public_id, username, password_hash from accounts where public_id = $1";
    with_pool!(database, pool => sqlx::query_as(FIND).bind(public_id).persistent(false).fetch_optional(pool).await)
}

/// The account's password hash now, if the account still exists.
///
/// # Errors
///
/// The database's error.
pub async fn password_hash(database: &Database, id: i64) -> Result<Option<String>, sqlx::Error> {
    const HASH: &str = "select password_hash from accounts where id = $1";
    with_pool!(database, pool => sqlx::query_scalar(HASH).bind(id).persistent(false).fetch_optional(pool).await)
}

/// Replaces the account's password hash if it is still `verified` (the one whose password was
/// just checked): compare-and-set, so a sign-in that checked a password which was changed
/// meanwhile can never write a hash of it back. Returns whether it replaced it.
///
/// # Errors
///
/// The database's error.
pub async fn replace_password_hash(
    database: &Database,
    id: i64,
    verified: &str,
    new: &str,
) -> Result<bool, sqlx::Error> {
    const UPDATE: &str =
        "update accounts set password_hash = $3 where id = $1 and password_hash = $2";
    let replaced = with_pool!(database, pool => {
        sqlx::query(UPDATE).bind(id).bind(verified).bind(new).persistent(false).execute(pool).await?.rows_affected()
    });
    Ok(replaced == 1)
}

/// Gives accounts made before usernames were normalised their opaque id, normalised key and
/// skeleton (computed here: SQL can do neither). An account whose normalised name collides with
/// another's keeps its old key and is logged; it still signs in as before.
///
/// # Errors
///
/// The database's error.
pub async fn backfill(database: &Database) -> Result<(), sqlx::Error> {
    const PENDING: &str = "select id, username from accounts where username_skeleton is null";
    const FILL: &str = "
        update accounts set public_id = coalesce(public_id, $2), username_key = $3,
            username_skeleton = $4
        where id = $1";
    let pending: Vec<(i64, String)> = with_pool!(database, pool => sqlx::query_as(PENDING).persistent(false).fetch_all(pool).await?);
    for (id, typed) in pending {
        let Ok(username) = Username::parse(&typed) else {
            log::warn!("account {id}: its username breaks today's rules; left as it is");
            continue;
        };
        let filled = with_pool!(database, pool => {
            sqlx::query(FILL)
                .bind(id)
                .bind(new_public_id())
                .bind(username.key())
                .bind(username.skeleton())
                .persistent(false)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        match filled {
            Ok(_) => {}
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                log::warn!(
                    "account {id}: its username looks like another account's; left as it is"
                );
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
