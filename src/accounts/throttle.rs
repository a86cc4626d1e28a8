//! Throttling, in the database so the limits hold across instances. An attempt that will cost a
//! password hash first *claims* a place in each of its budgets, atomically with the count: when
//! requests arrive together only as many claims succeed as the budget has room for, and the
//! rest are refused (429, `Retry-After`) before any hashing. A claim stays counted unless the
//! attempt succeeds (a wrong password, and an attempt that ends in an error, both count); a
//! success releases it.

use std::net::IpAddr;

use latch::Database;

use super::config::AccountsConfig;
use super::username::Username;

/// How long, past the wait for a hashing slot, an attempt may still be checking its password:
/// far more than a hash takes, even on a loaded machine.
pub const IN_FLIGHT_MARGIN_MS: i64 = 10_000;

/// The throttle, kept in Rocket's managed state.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    config: AccountsConfig,
}

/// One budget an attempt draws on: a scope and how many attempts it may have in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    scope: String,
    limit: u32,
}

/// A claimed place in some budgets: kept (counted) unless [`Throttle::release`]d.
#[derive(Debug)]
#[must_use = "a claim is counted until it is released"]
pub struct Claim {
    id: i64,
    /// When it was claimed (Unix ms).
    at: i64,
}

/// Whether a claim was granted.
#[derive(Debug)]
pub enum Claimed {
    Granted(Claim),
    /// A budget is spent: retry after this many seconds.
    Refused {
        retry_after: u64,
    },
}

impl Throttle {
    pub fn new(config: AccountsConfig) -> Self {
        Self { config }
    }

    /// The budgets of a sign-in as `username` from `address`: that username from that network,
    /// that network for any username, and that username from anywhere (a high ceiling).
    /// Without a username that could exist (it broke the rules), only the network's.
    pub fn sign_in(&self, username: Option<&Username>, address: Option<IpAddr>) -> Vec<Budget> {
        let network = network_scope(address);
        let mut budgets = vec![Budget {
            scope: format!("sign-in address:{network}"),
            limit: self.config.max_failures_per_address,
        }];
        if let Some(username) = username {
            let key = username.key();
            budgets.push(Budget {
                scope: user_and_network_scope(username, &network),
                limit: self.config.max_failures_per_user_and_address,
            });
            budgets.push(Budget {
                scope: format!("sign-in user:{key}"),
                limit: self.config.max_failures_per_user,
            });
        }
        budgets
    }

    /// The budget of a registration from `address`.
    pub fn registration(&self, address: Option<IpAddr>) -> Vec<Budget> {
        vec![Budget {
            scope: format!("register address:{}", network_scope(address)),
            limit: self.config.max_registrations_per_address,
        }]
    }

    /// The budget of a signed-in account's password checks (a password change): only its own
    /// sessions can spend it, so strangers' failed sign-ins never block the owner's change.
    pub fn password_change(&self, account_public_id: &str) -> Vec<Budget> {
        vec![Budget {
            scope: format!("password account:{account_public_id}"),
            limit: self.config.max_failures_per_user_and_address,
        }]
    }

    /// Claims one place in every budget, or in none if any is spent, atomically across
    /// requests and instances: on SQLite the claim holds the database's write lock, on
    /// Postgres a transaction-scoped advisory lock per scope. Forgets attempts older than the
    /// window on the way.
    ///
    /// # Errors
    ///
    /// The database's error (nothing was claimed).
    pub async fn claim(
        &self,
        database: &Database,
        budgets: &[Budget],
        now: i64,
    ) -> Result<Claimed, sqlx::Error> {
        // The attempt whose ageing out frees a place: the limit-th newest in the window.
        const NTH_NEWEST: &str = "
            select at from throttled_attempts
            where scope = $1 and at > $2
            order by at desc
            limit 1 offset $3";
        const INSERT: &str =
            "insert into throttled_attempts (scope, at, claim) values ($1, $2, $3)";
        const FORGET: &str = "delete from throttled_attempts where at <= $1";
        // Scopes locked in one order everywhere, so two claims never wait on each other.
        const LOCK_SCOPE: &str = "select pg_advisory_xact_lock($1, hashtext($2))";
        /// Sets the throttle's advisory locks apart from any other use of them.
        const LOCK_CLASS: i32 = 0x6c61_7463; // "latc"

        let since = now - self.config.window_ms();
        let id = claim_id();
        let mut sorted: Vec<&Budget> = budgets.iter().collect();
        sorted.sort_by(|a, b| a.scope.cmp(&b.scope));
        macro_rules! claim_in {
            ($transaction:ident) => {{
                let mut wait: Option<i64> = None;
                for budget in &sorted {
                    let nth: Option<i64> = sqlx::query_scalar(NTH_NEWEST)
                        .bind(&budget.scope)
                        .bind(since)
                        .bind(i64::from(budget.limit) - 1)
                        .persistent(false)
                        .fetch_optional(&mut *$transaction)
                        .await?;
                    if let Some(at) = nth {
                        wait = Some(wait.map_or(at, |other| other.max(at)));
                    }
                }
                if let Some(at) = wait {
                    $transaction.rollback().await?;
                    return Ok(Claimed::Refused {
                        retry_after: seconds_until(at + self.config.window_ms(), now),
                    });
                }
                for budget in &sorted {
                    sqlx::query(INSERT)
                        .bind(&budget.scope)
                        .bind(now)
                        .bind(id)
                        .persistent(false)
                        .execute(&mut *$transaction)
                        .await?;
                }
                sqlx::query(FORGET)
                    .bind(since)
                    .persistent(false)
                    .execute(&mut *$transaction)
                    .await?;
                $transaction.commit().await?;
            }};
        }
        match database {
            Database::Sqlite(pool) => {
                // IMMEDIATE takes the write lock before the count, so no other claim can count
                // in between (a deferred transaction would count, then fail to upgrade).
                let mut transaction = pool.begin_with("begin immediate").await?;
                claim_in!(transaction);
            }
            Database::Postgres(pool) => {
                let mut transaction = pool.begin().await?;
                for budget in &sorted {
                    sqlx::query(LOCK_SCOPE)
                        .bind(LOCK_CLASS)
                        .bind(&budget.scope)
                        .persistent(false)
                        .execute(&mut *transaction)
                        .await?;
                }
                claim_in!(transaction);
            }
        }
        Ok(Claimed::Granted(Claim { id, at: now }))
    }

    /// Gives a claim's places back: the attempt succeeded, or never checked a password.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn release(&self, database: &Database, claim: Claim) -> Result<(), sqlx::Error> {
        const RELEASE: &str = "delete from throttled_attempts where claim = $1";
        super::with_pool!(database, pool => {
            sqlx::query(RELEASE).bind(claim.id).persistent(false).execute(pool).await?;
        });
        Ok(())
    }

    /// A sign-in succeeded under `claim`: gives its places back, and forgets the username's
    /// failures from that network that were over before it began (the owner's own typos); the
    /// network's and the username's other budgets keep theirs.
    ///
    /// Attempts that may still be racing it are not forgotten: an attempt claimed less than
    /// the longest wait for a hashing slot (plus [`IN_FLIGHT_MARGIN_MS`]) before this one may
    /// still be checking its password, and forgetting it would give a burst of guesses that
    /// carries the right password more checks than the budget allows.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn succeeded(
        &self,
        database: &Database,
        claim: Claim,
        username: &Username,
        address: Option<IpAddr>,
    ) -> Result<(), sqlx::Error> {
        const FORGIVE: &str = "delete from throttled_attempts where scope = $1 and at < $2";
        let scope = user_and_network_scope(username, &network_scope(address));
        let settled_before = claim.at - i64::from(self.config.hash_wait_ms) - IN_FLIGHT_MARGIN_MS;
        self.release(database, claim).await?;
        super::with_pool!(database, pool => {
            sqlx::query(FORGIVE)
                .bind(&scope)
                .bind(settled_before)
                .persistent(false)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

/// The scope of one username's failed sign-ins from one network.
fn user_and_network_scope(username: &Username, network: &str) -> String {
    format!("sign-in user+address:{network} {}", username.key())
}

/// The network a throttle counts a client under: an IPv4 address by itself, an IPv6 address by
/// its /64 (one subscriber's prefix: counting each of its 2^64 addresses apart would give one
/// client that many budgets). An IPv4 address mapped into IPv6 counts as IPv4.
pub fn network_scope(address: Option<IpAddr>) -> String {
    match address.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
        None => "unknown".to_owned(),
    }
}

/// Whole seconds from `now` until `at` (Unix ms), rounded up and at least one: never invite a
/// retry that would still be refused.
fn seconds_until(at: i64, now: i64) -> u64 {
    u64::try_from((at - now).max(0))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}

/// A random claim id: unique enough that two claims never share one.
fn claim_id() -> i64 {
    rand::random::<i64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_per_64_and_ipv4_per_address() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("an address");
        let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff"
            .parse()
            .expect("an address");
        let next_64: IpAddr = "2001:db8:1:3::1".parse().expect("an address");
        let v4: IpAddr = "203.0.113.9".parse().expect("an address");
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().expect("an address");

        assert_eq!(network_scope(Some(one)), network_scope(Some(same_64)));
        assert_ne!(network_scope(Some(one)), network_scope(Some(next_64)));
        assert_eq!(network_scope(Some(one)), "2001:db8:1:2::/64");
        assert_eq!(network_scope(Some(v4)), "203.0.113.9");
        assert_eq!(network_scope(Some(mapped)), "203.0.113.9");
        assert_ne!(
            network_scope(Some(v4)),
            network_scope(Some("203.0.113.10".parse().expect("an address")))
        );
    }

    #[test]
    fn a_retry_is_never_invited_too_early() {
        assert_eq!(seconds_until(1_000, 1_000), 1);
        assert_eq!(seconds_until(2_001, 1_000), 2);
        assert_eq!(seconds_until(0, 1_000), 1);
    }
}
