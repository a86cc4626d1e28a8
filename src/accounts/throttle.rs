//! Throttling failed sign-ins, per username and per client address, in the database so the
//! limits hold across instances: past the limit, a sign-in is refused (429, `Retry-After`)
//! without its password being checked, until the oldest failure in the window ages out.

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
    /// The window, in seconds.
    pub failure_window: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures_per_user: 5,
            max_failures_per_address: 20,
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
    pub fn new(username: &str, address: Option<std::net::IpAddr>) -> Self {
        Self {
            user: format!("user:{}", super::username_key(username)),
            address: address.map(|ip| format!("addr:{}", ip.to_canonical())),
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

    /// How long until `scope` has fewer than `limit` failures in the window, if it has not now.
    async fn wait_for(
        &self,
        database: &Database,
        scope: &str,
        limit: u32,
        now: i64,
    ) -> Result<Option<u64>, sqlx::Error> {
        // The failure whose ageing out brings the count under the limit: the limit-th newest.
        const NTH_NEWEST: &str = "
            select failed_at from sign_in_failures
            where scope = $1 and failed_at > $2
            order by failed_at desc
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
        Ok(nth.map(|failed_at| {
            let ms = failed_at + self.config.window_ms() - now;
            // Whole seconds, rounded up: never invite a retry that would still be refused.
            u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000).max(1)
        }))
    }

    /// Records a failed sign-in in both scopes, and forgets failures older than the window.
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
        const INSERT: &str = "insert into sign_in_failures (scope, failed_at) values ($1, $2)";
        const FORGET: &str = "delete from sign_in_failures where failed_at <= $1";
        let cutoff = now - self.config.window_ms();
        with_pool!(database, pool => {
            let mut transaction = pool.begin().await?;
            for scope in std::iter::once(&scopes.user).chain(&scopes.address) {
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
        const CLEAR: &str = "delete from sign_in_failures where scope = $1";
        with_pool!(database, pool => {
            sqlx::query(CLEAR).bind(&scopes.user).execute(pool).await?;
        });
        Ok(())
    }
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
