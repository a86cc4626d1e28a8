//! Session settings, read from the `session` table of Rocket's configuration.

use serde::Deserialize;

/// How sessions behave. Every field has a default, so an empty `[default.session]` table is valid;
/// each can be overridden with Rocket's env form, e.g. `ROCKET_SESSION='{idle_timeout=60}'`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Name of the private cookie that carries the session ID.
    pub cookie_name: String,
    /// Seconds without activity after which a session ends.
    pub idle_timeout: u64,
    /// Seconds after creation at which a session ends, however active it is.
    pub absolute_timeout: u64,
    /// Seconds a read may go without extending the idle deadline. Reads inside this window do not
    /// write to the database; the first read after it pushes the deadline (and the cookie) forward.
    pub touch_interval: u64,
    /// Seconds between purges of expired rows.
    pub purge_interval: u64,
    /// Rows deleted per statement by the purge, so a large backlog never locks the table for long.
    pub purge_batch_size: u32,
    /// Sessions kept in memory so reads skip the database (0 turns the cache off). On SQLite
    /// this process must be the file's only writer; on Postgres see `postgres_cache`.
    pub cache_capacity: usize,
    /// Cache on Postgres too. Other instances announce their changes (LISTEN/NOTIFY), and a
    /// cache hit first waits until every change committed before it has arrived (one shared
    /// `select 1` on the listening connection), so another instance's logout counts at once.
    pub postgres_cache: bool,
    /// Mark the cookie `Secure` (sent over HTTPS only). Turn on whenever the site is served over TLS.
    pub cookie_secure: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_name: "session".into(),
            idle_timeout: 3600,
            absolute_timeout: 86_400,
            touch_interval: 60,
            purge_interval: 60,
            purge_batch_size: 1000,
            cache_capacity: 10_000,
            postgres_cache: true,
            cookie_secure: false,
        }
    }
}

impl SessionConfig {
    /// Checks the settings against each other; the message names the key to fix.
    pub fn validate(&self) -> Result<(), String> {
        let valid_name = !self.cookie_name.is_empty()
            && self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name {
            return Err(format!(
                "session.cookie_name {:?} is not a valid cookie name",
                self.cookie_name
            ));
        }
        if self.idle_timeout == 0 || self.absolute_timeout == 0 {
            return Err("session.idle_timeout and session.absolute_timeout must be > 0".into());
        }
        if self.touch_interval >= self.idle_timeout {
            return Err("session.touch_interval must be shorter than session.idle_timeout".into());
        }
        if self.purge_interval == 0 || self.purge_batch_size == 0 {
            return Err("session.purge_interval and session.purge_batch_size must be > 0".into());
        }
        Ok(())
    }

    pub(crate) fn idle_timeout_ms(&self) -> i64 {
        seconds_to_ms(self.idle_timeout)
    }

    pub(crate) fn absolute_timeout_ms(&self) -> i64 {
        seconds_to_ms(self.absolute_timeout)
    }

    pub(crate) fn touch_interval_ms(&self) -> i64 {
        seconds_to_ms(self.touch_interval)
    }
}

fn seconds_to_ms(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(SessionConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_touch_interval_as_long_as_the_idle_timeout_is_refused() {
        let config = SessionConfig {
            idle_timeout: 60,
            touch_interval: 60,
            ..SessionConfig::default()
        };
        assert!(config.validate().is_err());
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
