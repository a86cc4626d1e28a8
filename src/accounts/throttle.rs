//! Throttling, in the database so the limits hold across instances: failed sign-ins per username
//! and per client address, and registrations per client address (each costs a password hash).
//! Past a limit the request is refused (429, `Retry-After`) before any hashing, until the
//! attempt that put the scope over its limit ages out of the window.

use std::net::IpAddr;

use latch::{ConfigError, Database, check_range};
use rocket::figment::Figment;
use serde::Deserialize;

use super::with_pool;

/// The `accounts` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Failed sign-ins one username may have in the window.
    pub max_failures_per_user: u32,
    /// Failed sign-ins one client address may have in the window.
    pub max_failures_per_address: u32,
    /// Accounts one client address may register in the window.
    pub max_registrations_per_address: u32,
    /// The window, in seconds.
    pub failure_window: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures_per_user: 5,
            max_failures_per_address: 20,
            max_registrations_per_address: 10,
            failure_window: 15 * 60,
        }
    }
}

impl ThrottleConfig {
    /// The top-level key these settings live under.
    pub const KEY: &str = "accounts";

    /// Reads the `accounts` table of `figment` (all defaults when absent) and checks it.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key that is unknown, of the wrong type or out of range.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        /// The top level, so that errors name keys by their full path (`accounts.…`).
        #[derive(Deserialize)]
        struct TopLevel {
            #[serde(default)]
            accounts: ThrottleConfig,
        }
        let config = figment
            .extract::<TopLevel>()
            .map_err(|error| ConfigError::from_figment(&error))?
            .accounts;
        check_range(
            "accounts.max_failures_per_user",
            config.max_failures_per_user,
            1,
            1000,
            "",
        )?;
        check_range(
            "accounts.max_failures_per_address",
            config.max_failures_per_address,
            1,
            100_000,
            "",
        )?;
        check_range(
            "accounts.failure_window",
            config.failure_window,
            1,
            86_400,
            " s",
        )?;
        Ok(config)
    }

    fn window_ms(&self) -> i64 {
        i64::from(self.failure_window) * 1000
    }
}

/// The throttle, kept in Rocket's managed state.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    config: ThrottleConfig,
}

/// What is being throttled: a username (by its key) and the client's address.
#[derive(Debug)]
pub struct Scopes {
    user: String,
    address: Option<String>,
}

impl Scopes {
    /// The scopes of a sign-in as `username` from `address`.
    pub fn new(username: &str, address: Option<IpAddr>) -> Self {
        Self {
            user: format!("sign-in user:{}", super::username_key(username)),
            address: address.map(|ip| format!("sign-in address:{}", ip.to_canonical())),
        }
    }
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self { config }
    }

    /// `Some(seconds to wait)` if either scope has used up its failures.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn retry_after(
        &self,
        database: &Database,
        scopes: &Scopes,
        now: i64,
    ) -> Result<Option<u64>, sqlx::Error> {
        let mut wait = None;
        let limits = [
            (Some(&scopes.user), self.config.max_failures_per_user),
            (
                scopes.address.as_ref(),
                self.config.max_failures_per_address,
            ),
        ];
        for (scope, limit) in limits {
            let Some(scope) = scope else { continue };
            if let Some(seconds) = self.wait_for(database, scope, limit, now).await? {
                wait = Some(wait.map_or(seconds, |other: u64| other.max(seconds)));
            }
        }
        Ok(wait)
    }

    /// `Some(seconds to wait)` if `address` has registered as many accounts as it may.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn registration_retry_after(
        &self,
        database: &Database,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<Option<u64>, sqlx::Error> {
        let Some(scope) = registration_scope(address) else {
            return Ok(None);
        };
        let limit = self.config.max_registrations_per_address;
        self.wait_for(database, &scope, limit, now).await
    }

    /// How long until `scope` has fewer than `limit` attempts in the window, if it has not now.
    async fn wait_for(
        &self,
        database: &Database,
        scope: &str,
        limit: u32,
        now: i64,
    ) -> Result<Option<u64>, sqlx::Error> {
        // The attempt whose ageing out brings the count under the limit: the limit-th newest.
        const NTH_NEWEST: &str = "
            select at from throttled_attempts
            where scope = $1 and at > $2
            order by at desc
            limit 1 offset $3";
        let since = now - self.config.window_ms();
        let offset = i64::from(limit) - 1;
        let nth: Option<i64> = with_pool!(database, pool => {
            sqlx::query_scalar(NTH_NEWEST)
                .bind(scope)
                .bind(since)
                .bind(offset)
                .fetch_optional(pool)
                .await?
        });
        Ok(nth.map(|at| {
            let ms = at + self.config.window_ms() - now;
            // Whole seconds, rounded up: never invite a retry that would still be refused.
            u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000).max(1)
        }))
    }

    /// Records a failed sign-in in both scopes.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn record_failure(
        &self,
        database: &Database,
        scopes: &Scopes,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let scopes: Vec<&str> = std::iter::once(&scopes.user)
            .chain(&scopes.address)
            .map(String::as_str)
            .collect();
        self.record(database, &scopes, now).await
    }

    /// Records a registration from `address`.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn record_registration(
        &self,
        database: &Database,
        address: Option<IpAddr>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        match registration_scope(address) {
            Some(scope) => self.record(database, &[&scope], now).await,
            None => Ok(()),
        }
    }

    /// Records an attempt in each of `scopes`, and forgets attempts older than the window.
    async fn record(
        &self,
        database: &Database,
        scopes: &[&str],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        const INSERT: &str = "insert into throttled_attempts (scope, at) values ($1, $2)";
        const FORGET: &str = "delete from throttled_attempts where at <= $1";
        let cutoff = now - self.config.window_ms();
        with_pool!(database, pool => {
            let mut transaction = pool.begin().await?;
            for scope in scopes {
                sqlx::query(INSERT).bind(scope).bind(now).execute(&mut *transaction).await?;
            }
            sqlx::query(FORGET).bind(cutoff).execute(&mut *transaction).await?;
            transaction.commit().await?;
        });
        Ok(())
    }

    /// Forgets the username's failures after it signed in.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn clear_user(
        &self,
        database: &Database,
        scopes: &Scopes,
    ) -> Result<(), sqlx::Error> {
        const CLEAR: &str = "delete from throttled_attempts where scope = $1";
        with_pool!(database, pool => {
            sqlx::query(CLEAR).bind(&scopes.user).execute(pool).await?;
        });
        Ok(())
    }
}

fn registration_scope(address: Option<IpAddr>) -> Option<String> {
    address.map(|ip| format!("register address:{}", ip.to_canonical()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_bad_ones_are_named_by_their_full_key() {
        assert_eq!(
            ThrottleConfig::from_figment(&Figment::new()).expect("defaults"),
            ThrottleConfig::default()
        );
        let typo = Figment::new().merge(("accounts", serde_json::json!({ "max_failure": 3 })));
        let zero = Figment::new().merge(("accounts.failure_window", 0));

        let typo = ThrottleConfig::from_figment(&typo).expect_err("a typo");
        let zero = ThrottleConfig::from_figment(&zero).expect_err("out of range");

        assert_eq!(typo.key, "accounts.max_failure");
        assert_eq!(zero.key, "accounts.failure_window");
    }
}
