//! The `accounts` settings: the throttling budgets and the bound on concurrent password hashes,
//! each range-checked at launch.

use std::time::Duration;

use latch::ConfigError;
use rocket::figment::Figment;
use serde::Deserialize;

use crate::config::check_range;

/// The `accounts` table of the configuration (`ROCKET_ACCOUNTS='{…}'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Failed sign-ins one username may have from one client network in the window: the
    /// budget an owner's typos and a single attacker share.
    pub max_failures_per_user_and_address: u32,
    /// Failed sign-ins one client network may have in the window, whatever the usernames.
    pub max_failures_per_address: u32,
    /// Failed sign-ins one username may have in the window from all networks together: a
    /// ceiling against a botnet, high enough that strangers cannot cheaply lock the owner out.
    pub max_failures_per_user: u32,
    /// Accounts one client network may register in the window.
    pub max_registrations_per_address: u32,
    /// The window, in seconds.
    pub failure_window: u32,
    /// Password hashes (argon2id, 19 MiB each) that may run at once; unset, the number of
    /// cores.
    pub max_concurrent_hashes: Option<u32>,
    /// Milliseconds a request waits for a hashing slot before it gets 503.
    pub hash_wait_ms: u32,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            max_failures_per_user_and_address: 5,
            max_failures_per_address: 20,
            max_failures_per_user: 100,
            max_registrations_per_address: 10,
            failure_window: 15 * 60,
            max_concurrent_hashes: None,
            hash_wait_ms: 1000,
        }
    }
}

impl AccountsConfig {
    /// The top-level key these settings live under.
    pub const KEY: &str = "accounts";

    /// Reads the `accounts` table of `figment` (all defaults when absent) and checks every key.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key that is unknown, of the wrong type or out of range.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        /// The top level, so that errors name keys by their full path (`accounts.…`).
        #[derive(Deserialize)]
        struct TopLevel {
            #[serde(default)]
            accounts: AccountsConfig,
        }
        let config = figment
            .extract::<TopLevel>()
            .map_err(|error| ConfigError::from_figment(&error))?
            .accounts;
        let budgets = [
            (
                "accounts.max_failures_per_user_and_address",
                config.max_failures_per_user_and_address,
            ),
            (
                "accounts.max_failures_per_address",
                config.max_failures_per_address,
            ),
            (
                "accounts.max_failures_per_user",
                config.max_failures_per_user,
            ),
            (
                "accounts.max_registrations_per_address",
                config.max_registrations_per_address,
            ),
        ];
        for (key, value) in budgets {
            check_range(key, value, 1, 1_000_000, "")?;
        }
        check_range(
            "accounts.failure_window",
            config.failure_window,
            1,
            86_400,
            " s",
        )?;
        if let Some(hashes) = config.max_concurrent_hashes {
            check_range("accounts.max_concurrent_hashes", hashes, 1, 1024, "")?;
        }
        check_range(
            "accounts.hash_wait_ms",
            config.hash_wait_ms,
            0,
            60_000,
            " ms",
        )?;
        Ok(config)
    }

    /// The throttling window in milliseconds.
    pub fn window_ms(&self) -> i64 {
        i64::from(self.failure_window) * 1000
    }

    /// How many hashes may run at once.
    pub fn concurrent_hashes(&self) -> usize {
        match self.max_concurrent_hashes {
            Some(hashes) => usize::try_from(hashes).unwrap_or(1),
            None => std::thread::available_parallelism().map_or(2, usize::from),
        }
    }

    /// How long a request waits for a hashing slot.
    pub fn hash_wait(&self) -> Duration {
        Duration::from_millis(u64::from(self.hash_wait_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_bad_ones_are_named_by_their_full_key() {
        assert_eq!(
            AccountsConfig::from_figment(&Figment::new()).expect("defaults"),
            AccountsConfig::default()
        );
        for (key, value) in [
            ("accounts.max_failure", serde_json::json!(3)),
            ("accounts.failure_window", serde_json::json!(0)),
            (
                "accounts.max_registrations_per_address",
                serde_json::json!(0),
            ),
            ("accounts.max_failures_per_user", serde_json::json!(0)),
            ("accounts.max_concurrent_hashes", serde_json::json!(0)),
            ("accounts.hash_wait_ms", serde_json::json!(-1)),
        ] {
            let figment = Figment::new().merge((key, value));

            let error = AccountsConfig::from_figment(&figment).expect_err(key);

            assert_eq!(error.key, key);
        }
    }
}
