//! The app's configuration: Rocket's figment (`Rocket.toml`, `ROCKET_*`, and `DATABASE_URL`), with
//! every key checked before anything starts. The walkthrough keeps its session settings where
//! its guide puts them (top-level `database_*` and `previous_secret_keys`, a `[session]` table)
//! and maps them onto the library's [`latch::Config`] itself ([`latch_config`]); this module
//! also adds the rule that a key nobody reads is a typo.

use rocket::config::Ident;
use rocket::figment::providers::{Env, Format, Toml};
use rocket::figment::value::Dict;
use rocket::figment::{Figment, Profile};

use latch::{ConfigError, DatabaseConfig, PreviousKeys, SessionConfig};

use crate::accounts::AccountsConfig;

/// The walkthrough's top-level keys for latch's settings (and `session`, the table of the rest).
const SESSION_KEYS: &[&str] = &[
    "database_url",
    "database_direct_url",
    "database_max_connections",
    "database_timeout",
    "previous_secret_keys",
    SESSION_TABLE,
];

/// The table of the session settings.
const SESSION_TABLE: &str = "session";

/// Rocket's own top-level keys: with the session keys ([`SESSION_KEYS`]) and the accounts
/// step's, anything else is a typo.
const ROCKET_KEYS: &[&str] = &[
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
];

/// The most async worker threads accepted: each is an OS thread started at launch.
const MAX_WORKERS: usize = 1024;
/// The most blocking threads accepted (Rocket's default is 512; they start only when needed).
const MAX_BLOCKING: usize = 100_000;

/// Reads and checks every setting the app uses: Rocket's own that could crash it or that this
/// binary cannot honour, the accounts step's, and latch's, after refusing any top-level key that
/// nobody reads.
///
/// # Errors
///
/// A [`ConfigError`] naming the first key that is unknown, of the wrong type or out of range.
/// Checks that `value` of `key` lies in `min..=max`, saying so as latch's own settings do.
///
/// # Errors
///
/// A [`ConfigError`] naming `key` and the range, with `unit` after the bounds.
pub fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: T,
    min: T,
    max: T,
    unit: &str,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(
            key,
            format!("{value} is out of range: use {min} to {max}{unit}"),
        ));
    }
    Ok(())
}

pub fn load(figment: &Figment) -> Result<latch::Config, ConfigError> {
    let keys: Dict = figment
        .extract()
        .map_err(|error| ConfigError::from_figment(&error))?;
    let known = |key: &str| {
        ROCKET_KEYS.contains(&key) || SESSION_KEYS.contains(&key) || key == AccountsConfig::KEY
    };
    if let Some(unknown) = keys.keys().find(|key| !known(key)) {
        return Err(ConfigError::new(
            unknown,
            "is not a setting latch or Rocket knows (see the README's configuration table)",
        ));
    }
    rocket_config(figment)?;
    AccountsConfig::from_figment(figment)?;
    latch_config(figment)
}

/// latch's configuration from where the walkthrough keeps it: `database_url`,
/// `database_max_connections`, `database_timeout` and `previous_secret_keys` at the top level,
/// the session settings in `[session]`. Errors name the keys as written there
/// (`session.idle_timeout`, `database_url`).
///
/// # Errors
///
/// A [`ConfigError`] naming the first key that is unknown, of the wrong type or out of range.
pub fn latch_config(figment: &Figment) -> Result<latch::Config, ConfigError> {
    let session = figment.focus(SESSION_TABLE);
    let keys: Dict = session
        .extract()
        .map_err(|error| ConfigError::from_figment(&error).within(SESSION_TABLE))?;
    if let Some(unknown) = keys
        .keys()
        .find(|key| !SessionConfig::KEYS.contains(&key.as_str()))
    {
        return Err(ConfigError::new(
            unknown,
            "is not a session setting (see the README's configuration table)",
        )
        .within(SESSION_TABLE));
    }
    Ok(latch::Config {
        database: DatabaseConfig::from_figment(figment)?,
        session: SessionConfig::from_figment(&session)
            .map_err(|error| error.within(SESSION_TABLE))?,
        previous_keys: PreviousKeys::from_figment(figment)?,
    })
}

/// Rocket's settings from `figment`, checked where a bad value would otherwise panic at launch
/// (`workers`, `max_blocking`) or be silently ignored (`tls`, which this binary cannot serve).
///
/// # Errors
///
/// A [`ConfigError`] naming the key.
pub fn rocket_config(figment: &Figment) -> Result<rocket::Config, ConfigError> {
    if figment.contains("tls") {
        return Err(ConfigError::new(
            "tls",
            "this binary is built without TLS and would serve plain HTTP: remove `tls` and \
             terminate HTTPS at a reverse proxy (see the README's deployment notes)",
        ));
    }
    let config =
        rocket::Config::try_from(figment).map_err(|error| ConfigError::from_figment(&error))?;
    check_range("workers", config.workers, 1, MAX_WORKERS, " threads")?;
    check_range(
        "max_blocking",
        config.max_blocking,
        1,
        MAX_BLOCKING,
        " threads",
    )?;
    Ok(config)
}

/// Rocket's usual figment (defaults, `Rocket.toml`, `ROCKET_*`, `ROCKET_PROFILE`) with three changes:
/// responses do not name the server unless `ident` is set (Rocket's default sends
/// `Server: Rocket`, which tells a scanner what to try and costs every response a header), and
/// `DATABASE_URL`, the variable sqlx-cli and most hosts use, wins over `database_url` from
/// `Rocket.toml`, and no client header is trusted for the client's address unless `ip_header`
/// names one.
pub fn figment() -> Figment {
    let defaults = rocket::Config {
        ident: Ident::none(),
        // Rocket trusts `X-Real-IP` by default, which any client can send: the client's
        // address is the socket's peer unless `ip_header` names a header a proxy you run sets.
        ip_header: None,
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

    /// Rocket's defaults, as [`figment`] starts from.
    fn defaults() -> Figment {
        Figment::from(rocket::Config::default())
    }

    #[test]
    fn the_defaults_load() {
        let config = load(&defaults()).expect("valid");
        assert_eq!(config.database, latch::DatabaseConfig::default());
        assert_eq!(config.session, latch::SessionConfig::default());
    }

    #[test]
    fn session_settings_are_read_from_the_session_table_and_named_so() {
        let config = load(&defaults().merge(("session.idle_timeout", 60))).expect("valid");
        assert_eq!(config.session.idle_timeout, 60);
        for (key, value) in [
            ("session.idle_timeout", json!(0)),
            ("session.idle_timout", json!(60)),
            ("database_timeout", json!(0)),
            ("database_url", json!("mysql://localhost/x")),
        ] {
            let error = load(&defaults().merge((key, value))).expect_err(key);
            assert_eq!(error.key, key, "{error}");
        }
    }

    #[test]
    fn a_latch_table_is_not_the_walkthroughs() {
        let error = load(&defaults().merge(("latch.idle_timeout", 60))).expect_err("unknown");
        assert_eq!(error.key, "latch");
    }

    #[test]
    fn settings_that_would_crash_rocket_or_that_it_cannot_honour_are_refused() {
        for (key, value) in [
            ("workers", json!(0)),
            ("max_blocking", json!(0)),
            ("workers", json!(100_000)),
            ("tls", json!({ "certs": "a.pem", "key": "a.key" })),
        ] {
            let error = load(&defaults().merge((key, value))).expect_err(key);
            assert_eq!(error.key, key);
        }
    }

    #[test]
    fn an_unknown_top_level_key_is_refused() {
        let error = load(&defaults().merge(("databse_url", "sqlite://x.db"))).expect_err("a typo");
        assert_eq!(error.key, "databse_url");
    }
}
