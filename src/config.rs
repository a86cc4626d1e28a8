//! The app's typed configuration, read from Rocket's figment (`Rocket.toml`, `ROCKET_*`, and
//! `DATABASE_URL`), checked key by key before anything starts.

use rocket::config::Ident;
use rocket::figment::providers::{Env, Format, Toml};
use rocket::figment::value::Dict;
use rocket::figment::{Figment, Profile};
use serde::Deserialize;

use crate::session::{ConfigError, SessionConfig, check_range};

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
    #[serde(skip)]
    pub session: SessionConfig,
}

/// Rocket's own top-level keys, and latch's: anything else is a typo.
const KNOWN_KEYS: &[&str] = &[
    // Rocket 0.5
    "address",
    "port",
    "workers",
    "max_blocking",
    "ident",
    "ip_header",
    "proxy_proto_header",
    "limits",
    "temp_dir",
    "keep_alive",
    "tls",
    "secret_key",
    "shutdown",
    "log_level",
    "cli_colors",
    // the name of the config file, when given as ROCKET_CONFIG
    "config",
    // latch
    "database_url",
    "database_max_connections",
    "database_timeout",
    "previous_secret_keys",
    "session",
];

fn default_database_url() -> String {
    "sqlite://data/latch.db".into()
}

fn default_max_connections() -> u32 {
    8
}

fn default_database_timeout() -> u64 {
    5
}

impl Config {
    /// Reads and checks every setting latch uses.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key that is unknown, of the wrong type or out of range.
    pub fn load(figment: &Figment) -> Result<Self, ConfigError> {
        let keys: Dict = figment
            .extract()
            .map_err(|error| ConfigError::from_figment(&error))?;
        if let Some(unknown) = keys.keys().find(|key| !KNOWN_KEYS.contains(&key.as_str())) {
            return Err(ConfigError::new(
                unknown,
                "is not a setting latch or Rocket knows (see the README's configuration table)",
            ));
        }
        let mut config: Self = figment
            .extract()
            .map_err(|error| ConfigError::from_figment(&error))?;
        check_range(
            "database_max_connections",
            config.database_max_connections,
            1,
            1000,
            " connections",
        )?;
        check_range(
            "database_timeout",
            config.database_timeout,
            1,
            3600,
            " seconds",
        )?;
        config.session = SessionConfig::from_figment(figment)?;
        Ok(config)
    }
}

/// Rocket's usual figment (defaults, `Rocket.toml`, `ROCKET_*`, `ROCKET_PROFILE`) with two changes:
/// responses do not name the server unless `ident` is set (Rocket's default sends
/// `Server: Rocket`, which tells a scanner what to try and costs every response a header), and
/// `DATABASE_URL`, the variable sqlx-cli and most hosts use, wins over `database_url` from
/// `Rocket.toml`.
pub fn figment() -> Figment {
    let defaults = rocket::Config {
        ident: Ident::none(),
        ..rocket::Config::default()
    };
    Figment::from(defaults)
        .merge(Toml::file(Env::var_or("ROCKET_CONFIG", "Rocket.toml")).nested())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .merge(Env::raw().only(&["DATABASE_URL"]))
        .select(Profile::from_env_or(
            "ROCKET_PROFILE",
            rocket::Config::DEFAULT_PROFILE,
        ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_defaults_load() {
        let config = Config::load(&Figment::new()).expect("valid");
        assert_eq!(config.database_max_connections, 8);
        assert_eq!(config.session, SessionConfig::default());
    }

    #[test]
    fn pool_settings_out_of_range_are_refused_naming_the_key() {
        for (key, value) in [
            ("database_max_connections", json!(0)),
            ("database_timeout", json!(0)),
            ("database_timeout", json!(u64::MAX)),
        ] {
            let error = Config::load(&Figment::new().merge((key, value))).expect_err("refused");
            assert_eq!(error.key, key, "{error}");
        }
    }

    #[test]
    fn an_unknown_top_level_key_is_refused() {
        let error = Config::load(&Figment::new().merge(("databse_url", "sqlite://x.db")))
            .expect_err("a typo");
        assert_eq!(error.key, "databse_url");
    }
}
