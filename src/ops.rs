//! Operator commands (`latch migrate`, `latch purge`, `latch sessions stats`): the same
//! configuration and database code as the server, run once from the command line.

use latch::purge::purge_expired;
use latch::{ConfigError, Database, SessionConfig, SessionError, SetupError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{self, figment};

/// Why an operator command failed; `main` prints it with its causes and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database setup failed")]
    Setup(#[from] SetupError),
    #[error("session store error")]
    Store(#[from] SessionError),
    #[error("could not create the walkthrough's tables")]
    Tables(#[from] sqlx::migrate::MigrateError),
    #[error("could not update the walkthrough's accounts")]
    Accounts(#[from] sqlx::Error),
}

/// The configuration the server would use.
pub fn load_config() -> Result<latch::Config, OpsError> {
    Ok(config::load(&figment())?)
}

/// Applies latch's pending migrations and the app's own (past a pooler, through
/// `database_direct_url`); returns a line for the operator.
pub async fn migrate(config: &latch::Config) -> Result<String, OpsError> {
    let database = Database::connect(&config.database.for_migrations()).await?;
    database
        .apply_schema(&config.database.sessions_table()?)
        .await?;
    crate::accounts::schema::apply(&database).await?;
    crate::accounts::backfill(&database).await?;
    Ok(format!("migrations applied ({})", database.backend_name()))
}

/// One purge pass over expired sessions, as the background task runs it.
pub async fn purge(config: &latch::Config) -> Result<String, OpsError> {
    // Past the pooler, when there is one: the store checks it has a session of its own.
    let database = Database::connect(&config.database.for_migrations()).await?;
    let store = database
        .session_store(&config.database.sessions_table()?, &uncached())
        .await?;
    let Some(expired) = store.expired_deletion() else {
        return Ok("this session store deletes no expired sessions".to_owned());
    };
    let removed = purge_expired(
        expired,
        OffsetDateTime::now_utc(),
        config.session.purge_batch_size,
    )
    .await
    .map_err(SessionError::from)?;
    Ok(format!("removed {removed} expired sessions"))
}

/// Counts of live and expired sessions, and the age of the oldest live one.
pub async fn stats(config: &latch::Config) -> Result<String, OpsError> {
    let database = Database::connect(&config.database.for_migrations()).await?;
    let table = config.database.sessions_table()?;
    database.apply_schema(&table).await?;
    let now = OffsetDateTime::now_utc();
    let stats = database.stats(&table, now).await?;
    let oldest = match stats.oldest_live_created_at {
        Some(created_at) => {
            let minutes = (now - created_at).whole_minutes();
            format!("{} ({minutes} min ago)", rfc3339(created_at))
        }
        None => "none".to_owned(),
    };
    Ok(format!(
        "live sessions:     {}\nexpired, unpurged: {}\noldest live:       {oldest}",
        stats.live, stats.expired
    ))
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339)
        .unwrap_or_else(|_| format!("{} ms", crate::clock::unix_ms(time)))
}

/// One-off commands gain nothing from a cache.
fn uncached() -> SessionConfig {
    SessionConfig {
        cache_capacity: 0,
        ..SessionConfig::default()
    }
}
