//! latch's settings: the `[default.latch]` table of Rocket's figment (env `ROCKET_LATCH='{…}'`),
//! or a [`Config`] the app builds itself, and their checks.

use rocket::figment::Figment;
use rocket::figment::value::{Dict, Value};
use serde::{Deserialize, Serialize};

use crate::{PreviousKeys, Table};

/// Every setting latch reads: what [`Latch::fairing`](crate::Latch::fairing) takes from the
/// `latch` table of the figment, or what an app hands to
/// [`Latch::with_config`](crate::Latch::with_config).
///
/// All of them sit side by side in the one table; nothing outside it is read, so an app's own
/// `database_url` or `[session]` table never meets latch's:
///
/// ```toml
/// [default.latch]
/// database_url = "sqlite://data/sessions.db"
/// idle_timeout = 1800
/// ```
///
/// Built by hand, it starts from the defaults:
///
/// ```
/// let mut config = latch::Config::default();
/// config.database.url = "sqlite::memory:".into();
/// config.session.idle_timeout = 600;
/// let fairing = latch::Latch::with_config(config);
/// # let _ = fairing;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Where sessions are stored (`database_url`, `database_max_connections`,
    /// `database_timeout`).
    pub database: DatabaseConfig,
    /// How sessions behave (`idle_timeout`, `cookie_name`, … : [`SessionConfig`]).
    pub session: SessionConfig,
    /// Earlier secret keys whose cookies still open (`previous_secret_keys`).
    pub previous_keys: PreviousKeys,
}

impl Config {
    /// The figment table latch reads: `[default.latch]` in `Rocket.toml`, `ROCKET_LATCH` in the
    /// environment.
    pub const TABLE: &'static str = "latch";

    /// The key of the earlier secret keys, beside the database and session keys.
    const PREVIOUS_KEYS: &'static str = "previous_secret_keys";

    /// Reads and checks every setting in the `latch` table of `figment` (the defaults where it
    /// is absent). Errors name keys by their full path, e.g. `latch.idle_timeout`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key that is unknown, of the wrong type or out of range.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let table = Self::table(figment)?;
        Self::from_table(&table).map_err(|error| error.within(Self::TABLE))
    }

    /// Every setting, read from the top level of `table` (a figment focused on latch's table).
    fn from_table(table: &Figment) -> Result<Self, ConfigError> {
        check_known_keys(table, Self::known_key)?;
        Ok(Self {
            database: DatabaseConfig::from_figment(table)?,
            session: SessionConfig::from_figment(table)?,
            previous_keys: PreviousKeys::from_figment(table)?,
        })
    }

    /// Checks a configuration built by hand, as [`Config::from_figment`] checks what it reads.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first field to fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.session.validate()
    }

    /// The session settings and previous keys alone, for a store the app built itself: the
    /// `database_*` keys are neither read nor checked.
    pub(crate) fn without_database(figment: &Figment) -> Result<Self, ConfigError> {
        let read = |table: &Figment| {
            check_known_keys(table, Self::known_key)?;
            Ok(Self {
                database: DatabaseConfig::default(),
                session: SessionConfig::from_figment(table)?,
                previous_keys: PreviousKeys::from_figment(table)?,
            })
        };
        read(&Self::table(figment)?).map_err(|error: ConfigError| error.within(Self::TABLE))
    }

    /// `figment` focused on latch's table; an error if `latch` is there but not a table.
    fn table(figment: &Figment) -> Result<Figment, ConfigError> {
        if let Ok(value) = figment.find_value(Self::TABLE)
            && !matches!(value, Value::Dict(..))
        {
            return Err(ConfigError::new(
                Self::TABLE,
                "must be a table of latch's settings (`[default.latch]`, or \
                 ROCKET_LATCH='{key=value,…}')",
            ));
        }
        Ok(figment.focus(Self::TABLE))
    }

    fn known_key(key: &str) -> bool {
        key == Self::PREVIOUS_KEYS
            || DatabaseConfig::KEYS.contains(&key)
            || SessionConfig::KEYS.contains(&key)
    }
}

/// Refuses the first key at the top of `table` that `known` does not accept.
///
/// # Errors
///
/// A [`ConfigError`] naming the key.
fn check_known_keys(table: &Figment, known: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
    let keys: Dict = table
        .extract()
        .map_err(|error| ConfigError::from_figment(&error))?;
    match keys.keys().find(|key| !known(key)) {
        Some(unknown) => Err(ConfigError::new(
            unknown,
            "is not a setting latch knows (see the configuration table in latch's guide)",
        )),
        None => Ok(()),
    }
}

/// The database sessions live in.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// `database_url`: a `sqlite:` or `postgres:` URL; the scheme picks the backend. Default
    /// `sqlite://data/latch.db` (the file and its folder are created on first start);
    /// `sqlite::memory:` keeps sessions in memory, for tests.
    #[serde(rename = "database_url", default = "default_database_url")]
    pub url: String,
    /// `database_max_connections`: upper bound on pooled connections (1 to 1,000, default 8).
    #[serde(
        rename = "database_max_connections",
        default = "default_max_connections"
    )]
    pub max_connections: u32,
    /// `database_timeout`: seconds to wait for a connection, or on SQLite for a lock, before a
    /// request gets 503 (1 to 3,600, default 5).
    #[serde(rename = "database_timeout", default = "default_database_timeout")]
    pub timeout: u64,
    /// `table`: the sessions table's name, `sessions` by default. Set it when the app has a
    /// table of that name (see [`Table`]).
    #[serde(default = "default_table")]
    pub table: String,
    /// `schema`: on Postgres, the schema of the sessions table (created if missing); unset, the
    /// connection's default (`public`).
    #[serde(default)]
    pub schema: Option<String>,
    /// `database_direct_url`: on Postgres behind a connection pooler (PgBouncer), a URL that
    /// reaches the database directly, for what a pooler cannot carry: latch's migrations (an
    /// advisory lock held for the session) and the listener that keeps the cache in step
    /// (`LISTEN`). Unset, both use `database_url`.
    #[serde(rename = "database_direct_url", default)]
    pub direct_url: Option<String>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: default_database_url(),
            max_connections: default_max_connections(),
            timeout: default_database_timeout(),
            table: default_table(),
            schema: None,
            direct_url: None,
        }
    }
}

fn default_table() -> String {
    "sessions".into()
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

impl DatabaseConfig {
    /// The keys it is read from.
    pub const KEYS: &'static [&'static str] = &[
        "database_url",
        "database_max_connections",
        "database_timeout",
        "table",
        "schema",
        "database_direct_url",
    ];

    /// Reads the `database_*` keys at the top of `figment` (defaults where absent; other keys
    /// are left alone) and checks them. [`Config::from_figment`] calls it on latch's table; an
    /// app with its own layout calls it where its keys are.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key of the wrong type or out of range.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let config: Self = figment
            .extract()
            .map_err(|error| ConfigError::from_figment(&error))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the scheme of the URL against this build's backends, and the ranges.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key to fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let scheme = self.url.split_once(':').map_or("", |(scheme, _)| scheme);
        if !crate::database::supports_scheme(scheme) {
            return Err(ConfigError::new(
                "database_url",
                format!(
                    "must start with {} (got `{scheme}:`)",
                    crate::database::supported_schemes()
                ),
            ));
        }
        check_range(
            "database_max_connections",
            self.max_connections,
            1,
            1000,
            " connections",
        )?;
        check_range("database_timeout", self.timeout, 1, 3600, " seconds")?;
        if let Some(direct) = &self.direct_url {
            let direct_scheme = direct.split_once(':').map_or("", |(scheme, _)| scheme);
            let postgres = |scheme: &str| matches!(scheme, "postgres" | "postgresql");
            if !postgres(scheme) || !postgres(direct_scheme) {
                return Err(ConfigError::new(
                    "database_direct_url",
                    "is for Postgres behind a pooler: both it and `database_url` must start \
                     with `postgres:`",
                ));
            }
        }
        if self.schema.is_some() && scheme == "sqlite" {
            return Err(ConfigError::new(
                "schema",
                "SQLite has no schemas: leave `schema` unset (and name the table with `table`)",
            ));
        }
        self.sessions_table().map(drop)
    }

    /// The same database, reached as migrations (and one-off operator commands) need it:
    /// through `database_direct_url` when it is set.
    #[must_use]
    pub fn for_migrations(&self) -> Self {
        Self {
            url: self.direct_url.clone().unwrap_or_else(|| self.url.clone()),
            direct_url: None,
            ..self.clone()
        }
    }

    /// The sessions table `table` and `schema` name.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `table` or `schema` when it is not a plain name.
    pub fn sessions_table(&self) -> Result<Table, ConfigError> {
        let table = Table::new(&self.table)?;
        match &self.schema {
            Some(schema) => table.in_schema(schema),
            None => Ok(table),
        }
    }
}

/// The longest timeout or interval accepted, in seconds (ten years). Every time latch computes
/// stays far inside `i64` milliseconds and `time`'s calendar with this bound.
pub const MAX_SECONDS: u64 = 10 * 365 * 24 * 60 * 60;
/// The most rows one purge statement may delete.
pub const MAX_PURGE_BATCH: u32 = 100_000;
/// The most sessions the cache may hold.
pub const MAX_CACHE_CAPACITY: usize = 10_000_000;
/// Bounds for `max_data_bytes`: room for a small object, and at most 1 MiB per session.
pub const DATA_BYTES_RANGE: (usize, usize) = (64, 1 << 20);
/// The longest default touch interval: a read extends the idle deadline at most once a minute.
const DEFAULT_MAX_TOUCH_MS: i64 = 60_000;

/// How sessions behave. Every field has a default, so an empty `[default.latch]` table is valid;
/// each can be overridden with Rocket's env form, e.g. `ROCKET_LATCH='{idle_timeout=60}'`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct SessionConfig {
    /// Name of the private cookie that carries the session ID.
    pub cookie_name: String,
    /// Seconds without activity after which a session ends.
    pub idle_timeout: u64,
    /// Seconds after creation at which a session ends, however active it is.
    pub absolute_timeout: u64,
    /// Seconds a read may go without extending the idle deadline. Reads inside this window do not
    /// write to the database; the first read after it pushes the deadline (and the cookie) forward.
    /// Unset, it follows `idle_timeout`: a quarter of it, at most 60 s.
    pub touch_interval: Option<u64>,
    /// Seconds between purges of expired rows.
    pub purge_interval: u64,
    /// Rows deleted per statement by the purge, so a large backlog never locks the table for long.
    pub purge_batch_size: u32,
    /// Sessions kept in memory so reads skip the database (0 turns the cache off); the least
    /// used make room. A session with more than 256 bytes of data counts once more for every
    /// further 256, so this bounds memory: about 180 bytes per ordinary session, 18 MiB at the
    /// default. On SQLite this process must be the file's only writer; on Postgres see
    /// `postgres_cache`.
    pub cache_capacity: usize,
    /// Cache on Postgres too. Other instances announce their changes (LISTEN/NOTIFY), and a
    /// cache hit first waits until every change committed before it has arrived (one shared
    /// `select 1` on the listening connection), so another instance's logout counts at once.
    pub postgres_cache: bool,
    /// Mark the session and CSRF cookies `Secure` (sent over HTTPS only). When not set, on in
    /// Rocket's release profile and off in debug (see [`SessionConfig::from_figment`]).
    pub cookie_secure: bool,
    /// The largest a session's data may grow, in bytes of its JSON form. A write past it fails
    /// with [`SessionError::TooLarge`](super::SessionError::TooLarge) and stores nothing.
    pub max_data_bytes: usize,
    /// Name of the private cookie that carries the CSRF token of the app's forms.
    pub csrf_cookie_name: String,
    /// Origins, besides the request's own host, whose state-changing requests are accepted:
    /// exact `scheme://host[:port]` strings, e.g. `https://app.example.com` for a front end on
    /// another subdomain, or the public origin of an app behind a proxy that rewrites `Host`.
    /// Empty by default: only the request's own host.
    pub trusted_origins: Vec<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "session".into(),
            idle_timeout: 3600,
            absolute_timeout: 86_400,
            touch_interval: None,
            purge_interval: 60,
            purge_batch_size: 1000,
            cache_capacity: 100_000,
            postgres_cache: true,
            cookie_secure: false,
            max_data_bytes: 16 * 1024,
            csrf_cookie_name: "csrf".into(),
            trusted_origins: Vec::new(),
        }
    }
}

/// A setting that is missing its mark: which key, what it holds, and what it may hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{key}`: {problem}")]
pub struct ConfigError {
    /// The key as written in `Rocket.toml`, e.g. `latch.idle_timeout`.
    pub key: String,
    /// What is wrong with it and what would be right.
    pub problem: String,
}

impl ConfigError {
    /// A problem with `key`.
    pub fn new(key: &str, problem: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// The same error with `table.` before its key: for settings read from inside a table.
    #[must_use]
    pub fn within(mut self, table: &str) -> Self {
        self.key = format!("{table}.{}", self.key);
        self
    }

    /// A figment extraction error, on one line, with the key it concerns.
    pub fn from_figment(error: &rocket::figment::Error) -> Self {
        let key = if error.path.is_empty() {
            "(configuration)".to_owned()
        } else {
            error.path.join(".")
        };
        let mut problem = error.kind.to_string();
        if let Some(source) = error.metadata.as_ref().and_then(|m| m.source.as_ref()) {
            problem.push_str(&format!(" (from {source})"));
        }
        Self { key, problem }
    }
}

/// Checks that `value` of `key` lies in `min..=max`.
///
/// # Errors
///
/// A [`ConfigError`] naming `key` and the range, with `unit` after the bounds.
pub(crate) fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
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

impl SessionConfig {
    /// The keys it is read from, one per field.
    pub const KEYS: &'static [&'static str] = &[
        "cookie_name",
        "idle_timeout",
        "absolute_timeout",
        "touch_interval",
        "purge_interval",
        "purge_batch_size",
        "cache_capacity",
        "postgres_cache",
        "cookie_secure",
        "max_data_bytes",
        "csrf_cookie_name",
        "trusted_origins",
    ];

    /// Reads the session settings at the top of `figment` (defaults where absent; other keys
    /// are left alone) and checks them. `cookie_secure`, when not set, is on in Rocket's release
    /// profile and off in debug. [`Config::from_figment`] calls it on latch's table; an app with
    /// its own layout calls it on a figment focused where its keys are.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key that is of the wrong type or out of range.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let mut config: Self = figment
            .extract()
            .map_err(|error| ConfigError::from_figment(&error))?;
        if !figment.contains("cookie_secure") {
            config.cookie_secure = figment.profile() == rocket::Config::RELEASE_PROFILE;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every setting's range and the settings against each other.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key to fix and the values it may take.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, name) in [
            ("cookie_name", &self.cookie_name),
            ("csrf_cookie_name", &self.csrf_cookie_name),
        ] {
            self.check_cookie_name(key, name)?;
        }
        if self.cookie_name == self.csrf_cookie_name {
            return Err(ConfigError::new(
                "csrf_cookie_name",
                "must differ from cookie_name",
            ));
        }
        let seconds = " seconds (at most 10 years)";
        check_range("idle_timeout", self.idle_timeout, 1, MAX_SECONDS, seconds)?;
        check_range(
            "absolute_timeout",
            self.absolute_timeout,
            1,
            MAX_SECONDS,
            seconds,
        )?;
        if let Some(touch) = self.touch_interval
            && touch >= self.idle_timeout
        {
            return Err(ConfigError::new(
                "touch_interval",
                format!(
                    "{touch} must be shorter than idle_timeout ({}); leave it unset to \
                     follow the idle timeout",
                    self.idle_timeout
                ),
            ));
        }
        check_range(
            "purge_interval",
            self.purge_interval,
            1,
            MAX_SECONDS,
            seconds,
        )?;
        check_range(
            "purge_batch_size",
            self.purge_batch_size,
            1,
            MAX_PURGE_BATCH,
            " rows",
        )?;
        check_range(
            "cache_capacity",
            self.cache_capacity,
            0,
            MAX_CACHE_CAPACITY,
            " sessions",
        )?;
        check_range(
            "max_data_bytes",
            self.max_data_bytes,
            DATA_BYTES_RANGE.0,
            DATA_BYTES_RANGE.1,
            " bytes",
        )?;
        for (index, origin) in self.trusted_origins.iter().enumerate() {
            if crate::csrf::Origin::parse(origin).is_none() {
                return Err(ConfigError::new(
                    "trusted_origins",
                    format!(
                        "entry {index}, {origin:?}, is not an origin: write it as \
                         `https://host` or `http://host:port`, with no path"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A cookie name must be a token (RFC 6265); the `__Host-` and `__Secure-` prefixes make
    /// browsers insist on `Secure` (and for `__Host-`, `Path=/` and no `Domain`, which latch
    /// always sends), so they need `cookie_secure`.
    fn check_cookie_name(&self, key: &str, name: &str) -> Result<(), ConfigError> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            return Err(ConfigError::new(
                key,
                format!(
                    "{name:?} is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~)"
                ),
            ));
        }
        let prefixed = ["__Host-", "__Secure-"].iter().any(|prefix| {
            name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix)
        });
        if prefixed && !self.cookie_secure {
            return Err(ConfigError::new(
                key,
                format!(
                    "{name:?} needs cookie_secure = true (browsers drop such cookies without Secure)"
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn idle_timeout_ms(&self) -> i64 {
        seconds_to_ms(self.idle_timeout)
    }

    pub(crate) fn absolute_timeout_ms(&self) -> i64 {
        seconds_to_ms(self.absolute_timeout)
    }

    /// The touch interval in force: the configured one, or a quarter of the idle timeout
    /// capped at a minute (so any idle timeout of a second or more works).
    pub fn touch_interval_ms(&self) -> i64 {
        match self.touch_interval {
            Some(seconds) => seconds_to_ms(seconds),
            None => (self.idle_timeout_ms() / 4).min(DEFAULT_MAX_TOUCH_MS),
        }
    }
}

fn seconds_to_ms(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use rocket::figment::providers::Serialized;
    use serde_json::json;

    use super::*;

    /// A figment whose `latch` table holds `latch`.
    fn figment(latch: &serde_json::Value) -> Figment {
        Figment::from(Serialized::defaults(json!({ "latch": latch })))
    }

    fn read(latch: &serde_json::Value) -> Result<Config, ConfigError> {
        Config::from_figment(&figment(latch))
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(SessionConfig::default().validate(), Ok(()));
        assert_eq!(DatabaseConfig::default().validate(), Ok(()));
        let config = Config::from_figment(&Figment::new()).expect("no table: the defaults");
        assert_eq!(config.database, DatabaseConfig::default());
        assert_eq!(config.session, SessionConfig::default());
    }

    #[test]
    fn the_key_lists_name_every_field() {
        fn assert_names_every_field(defaults: impl Serialize, keys: &[&str]) {
            let value = serde_json::to_value(defaults).expect("serialises");
            let mut fields: Vec<_> = value.as_object().expect("an object").keys().collect();
            let mut keys: Vec<_> = keys.iter().collect();
            fields.sort();
            keys.sort();
            assert_eq!(fields, keys);
        }
        assert_names_every_field(SessionConfig::default(), SessionConfig::KEYS);
        assert_names_every_field(DatabaseConfig::default(), DatabaseConfig::KEYS);
    }

    #[test]
    fn only_the_latch_table_is_read() {
        let figment = Figment::from(Serialized::defaults(json!({
            "database_url": "mysql://app@localhost/shop",
            "database_timeout": 0,
            "session": { "backend": "redis", "idle_timeout": 0 },
            "previous_secret_keys": "not a list",
            "latch": { "database_url": "sqlite::memory:", "idle_timeout": 60 },
        })));
        let config = Config::from_figment(&figment).expect("the app's keys are its own");
        assert_eq!(config.database.url, "sqlite::memory:");
        assert_eq!(config.database.timeout, 5);
        assert_eq!(config.session.idle_timeout, 60);
    }

    #[test]
    fn database_settings_out_of_range_are_refused_naming_the_key() {
        for (key, value) in [
            ("database_max_connections", json!(0)),
            ("database_max_connections", json!(1001)),
            ("database_timeout", json!(0)),
            ("database_timeout", json!(u64::MAX)),
            ("database_url", json!("mysql://localhost/x")),
        ] {
            let error = read(&json!({ key: value })).expect_err("refused");
            assert_eq!(error.key, format!("latch.{key}"), "{error}");
        }
    }

    #[test]
    fn an_unsupported_scheme_names_the_supported_ones() {
        let error = read(&json!({ "database_url": "mysql://localhost/x" })).expect_err("refused");
        assert!(error.problem.contains("`mysql:`"), "{error}");
        let supported = if cfg!(feature = "sqlite") {
            "sqlite:"
        } else {
            "postgres:"
        };
        assert!(error.problem.contains(supported), "{error}");
    }

    #[test]
    fn a_latch_key_that_is_not_a_table_is_refused() {
        let figment = Figment::from(Serialized::defaults(json!({ "latch": 5 })));
        let error = Config::from_figment(&figment).expect_err("not a table");
        assert_eq!(error.key, "latch");
    }

    #[test]
    fn without_database_reads_no_database_key() {
        let config = Config::without_database(&figment(&json!({
            "database_url": "mysql://nowhere",
            "database_timeout": 0,
            "idle_timeout": 60,
        })))
        .expect("database keys are not read");
        assert_eq!(config.session.idle_timeout, 60);
        let error = Config::without_database(&figment(&json!({ "idle_timeout": 0 })))
            .expect_err("session keys still are");
        assert_eq!(error.key, "latch.idle_timeout");
    }

    #[test]
    fn the_touch_interval_follows_a_short_idle_timeout() {
        for (idle, touch_ms) in [(1, 250), (2, 500), (60, 15_000), (3600, 60_000)] {
            let config = read(&json!({ "idle_timeout": idle }))
                .expect("any idle timeout of a second or more is valid");
            assert_eq!(config.session.touch_interval_ms(), touch_ms, "idle {idle}");
        }
    }

    #[test]
    fn the_guides_example_is_valid() {
        assert!(read(&json!({ "idle_timeout": 60, "purge_interval": 5 })).is_ok());
    }

    #[test]
    fn an_explicit_touch_interval_as_long_as_the_idle_timeout_is_refused() {
        let config = SessionConfig {
            idle_timeout: 60,
            touch_interval: Some(60),
            ..SessionConfig::default()
        };
        let error = config.validate().expect_err("refused");
        assert_eq!(error.key, "touch_interval");
        let error =
            read(&json!({ "idle_timeout": 60, "touch_interval": 60 })).expect_err("refused");
        assert_eq!(error.key, "latch.touch_interval");
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_key() {
        for (key, value) in [
            ("idle_timeout", json!(0)),
            ("idle_timeout", json!(100_000_000_000_000u64)),
            ("absolute_timeout", json!(MAX_SECONDS + 1)),
            ("purge_interval", json!(0)),
            ("purge_batch_size", json!(0)),
            ("cache_capacity", json!(MAX_CACHE_CAPACITY + 1)),
            ("max_data_bytes", json!(10)),
        ] {
            let error = read(&json!({ key: value })).expect_err("out of range");
            assert_eq!(error.key, format!("latch.{key}"), "{error}");
            assert!(error.problem.contains("use "), "{error}");
        }
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused_naming_the_key() {
        let typo = read(&json!({ "idle_timout": 60 })).expect_err("unknown key");
        assert_eq!(typo.key, "latch.idle_timout", "{typo}");
        let wrong = read(&json!({ "idle_timeout": "soon" })).expect_err("wrong type");
        assert_eq!(wrong.key, "latch.idle_timeout", "{wrong}");
    }

    #[test]
    fn cookies_are_secure_by_default_in_release_only() {
        let release = Figment::new().select("release");
        let debug = Figment::new().select("debug");
        let explicit = release.clone().merge(("latch.cookie_secure", false));
        let secure = |figment: &Figment| {
            Config::from_figment(figment)
                .expect("valid")
                .session
                .cookie_secure
        };

        assert!(secure(&release));
        assert!(!secure(&debug));
        assert!(!secure(&explicit));
    }

    #[test]
    fn a_host_prefixed_cookie_name_needs_secure() {
        let insecure = SessionConfig {
            cookie_name: "__Host-session".into(),
            cookie_secure: false,
            ..SessionConfig::default()
        };
        let secure = SessionConfig {
            cookie_secure: true,
            ..insecure.clone()
        };
        assert_eq!(insecure.validate().expect_err("refused").key, "cookie_name");
        assert_eq!(secure.validate(), Ok(()));
    }

    #[test]
    fn a_cookie_name_with_separators_is_refused() {
        for name in ["", "a b", "a;b", "a=b", "ä"] {
            let config = SessionConfig {
                cookie_name: name.into(),
                ..SessionConfig::default()
            };
            assert!(config.validate().is_err(), "{name:?}");
        }
    }
}
