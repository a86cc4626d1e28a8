//! The app's typed configuration, read from Rocket's figment (`Rocket.toml`, `ROCKET_*`, and
//! `DATABASE_URL`).

use rocket::figment::Figment;
use rocket::figment::providers::Env;
use serde::Deserialize;

use crate::session::SessionConfig;

/// Everything latch reads from configuration besides Rocket's own keys.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `sqlite:` or `postgres:` URL; the scheme picks the backend.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// Upper bound on pooled connections.
    #[serde(default = "default_max_connections")]
    pub database_max_connections: u32,
    /// Seconds to wait for a connection (or, on SQLite, for a lock) before answering 503.
    #[serde(default = "default_database_timeout")]
    pub database_timeout: u64,
    #[serde(default)]
    pub session: SessionConfig,
}

fn default_database_url() -> String {
    "sqlite://data/latch.db".into()
}

fn default_max_connections() -> u32 {
    8
}

fn default_database_timeout() -> u64 {
    5
}

/// Rocket's usual figment plus `DATABASE_URL`, the variable sqlx-cli and most hosts use, which
/// wins over `database_url` from `Rocket.toml`.
pub fn figment() -> Figment {
    rocket::Config::figment().merge(Env::raw().only(&["DATABASE_URL"]))
}
