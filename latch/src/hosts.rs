//! Postgres URLs that name several servers (libpq's multi-host form,
//! `postgres://u@h1:5432,h2:5433/db?target_session_attrs=read-write`), and pools that follow
//! the primary from one server to the next when it fails over.
//!
//! sqlx connects to one host, so the hosts are tried here: in order, keeping the first that
//! answers and, unless `target_session_attrs=any`, accepts writes. A watcher task keeps an
//! eye on the server the pool uses (every [`WATCH_EVERY`]); when it stops answering or turns
//! read-only, the watcher looks for the primary again, points the pool there, and has every
//! connection made before the switch dropped as it next comes out of the pool. Until a
//! primary answers, queries fail with errors latch answers 503.

use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};
use tokio::sync::Notify;

/// How often the watcher asks the pool's server whether it is still the primary.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// How long the server has to answer the watcher before it is taken for gone.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// The pause between rounds over the hosts while none of them is a primary.
const SEARCH_AGAIN: Duration = Duration::from_millis(250);

/// Which server a URL's connections may use (libpq's `target_session_attrs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// Any server that answers (libpq's default for one host).
    Any,
    /// Only one that accepts writes: the primary (the default for several hosts).
    ReadWrite,
}

/// The servers one URL names, each as sqlx options, in the URL's order.
#[derive(Debug, Clone)]
pub(crate) struct Hosts {
    servers: Vec<PgConnectOptions>,
    wanted: Wanted,
}

impl Hosts {
    /// Reads `url`: one host, or several separated by commas, each `host`, `host:port` or
    /// `[ipv6]:port`. `target_session_attrs` may be `read-write` (or `primary`) or `any`.
    pub(crate) fn parse(url: &str) -> Result<Self, sqlx::Error> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(malformed("a Postgres URL starts with `postgres://`"))?;
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (user, hosts) = match authority.rsplit_once('@') {
            Some((user, hosts)) => (Some(user), hosts),
            None => (None, authority),
        };
        let (tail, wanted) = take_target_session_attrs(tail)?;
        let hosts: Vec<&str> = hosts.split(',').collect();
        if hosts.len() > 1 && hosts.iter().any(|host| host.is_empty()) {
            return Err(malformed("a host in the URL's list of hosts is empty"));
        }
        let servers = hosts
            .iter()
            .map(|host| {
                let user = user.map(|user| format!("{user}@")).unwrap_or_default();
                PgConnectOptions::from_str(&format!("{scheme}://{user}{host}{tail}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let wanted = wanted.unwrap_or(if servers.len() > 1 {
            Wanted::ReadWrite
        } else {
            Wanted::Any
        });
        Ok(Self { servers, wanted })
    }

    /// Whether the pool needs a watcher: one server that any session will do is just a
    /// connection, as sqlx makes it.
    pub(crate) fn need_watching(&self) -> bool {
        self.servers.len() > 1 || self.wanted == Wanted::ReadWrite
    }

    /// The first server's options (the only one's, when there is one).
    pub(crate) fn first(&self) -> &PgConnectOptions {
        &self.servers[0]
    }

    /// The first server, in the URL's order, that answers and is what the URL wants.
    pub(crate) async fn find(&self, timeout: Duration) -> Result<PgConnectOptions, sqlx::Error> {
        let mut last_error = None;
        for server in &self.servers {
            let connected = tokio::time::timeout(timeout, PgConnection::connect_with(server))
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)
                .and_then(|connected| connected);
            let verdict = match connected {
                Ok(mut connection) => {
                    let verdict = self.suits(&mut connection).await;
                    let _ = connection.close().await;
                    verdict
                }
                Err(error) => Err(error),
            };
            match verdict {
                Ok(()) => return Ok(server.clone()),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(read_only))
    }

    /// `Ok` if `connection`'s server is one this URL may use: it accepts writes, unless any
    /// server will do.
    async fn suits(&self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.wanted == Wanted::Any || accepts_writes(connection).await? {
            return Ok(());
        }
        Err(read_only())
    }
}

/// `tail` (`/db?…`) without `target_session_attrs`, and what that asked for.
fn take_target_session_attrs(tail: &str) -> Result<(String, Option<Wanted>), sqlx::Error> {
    let Some((path, query)) = tail.split_once('?') else {
        return Ok((tail.to_owned(), None));
    };
    let mut wanted = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("target_session_attrs", value)) => {
                wanted = Some(match value {
                    "read-write" | "primary" => Wanted::ReadWrite,
                    "any" => Wanted::Any,
                    _ => {
                        return Err(malformed(
                            "`target_session_attrs` must be `read-write` or `any`: latch \
                             writes to its database",
                        ));
                    }
                });
            }
            _ => kept.push(pair),
        }
    }
    let tail = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    Ok((tail, wanted))
}

/// A URL sqlx would not know how to read either: a configuration error.
fn malformed(why: &'static str) -> sqlx::Error {
    sqlx::Error::Configuration(why.into())
}

/// Whether the server `connection` reaches takes writes now (a standby, or a primary being
/// demoted, does not).
pub(crate) async fn accepts_writes(connection: &mut PgConnection) -> Result<bool, sqlx::Error> {
    // A simple query: nothing prepared, which any pooler carries.
    let row = sqlx::raw_sql("show transaction_read_only")
        .fetch_one(connection)
        .await?;
    let read_only: String = row.try_get(0)?;
    Ok(read_only == "off")
}

/// The error a query gets while no server of the URL accepts writes: an I/O error, which
/// latch answers 503 (retrying later may succeed).
pub(crate) fn read_only() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(
        "the Postgres server does not accept writes (a standby, or a primary being demoted)",
    ))
}

/// When the pool last moved to another server: connections older than that are dropped.
#[derive(Debug)]
struct Switches {
    hosts: Hosts,
    last: Mutex<Option<Instant>>,
    /// Woken when a new connection found its server read-only.
    suspect: Notify,
}

impl Switches {
    /// Whether a connection `age` old was made after the last switch.
    fn is_current(&self, age: Duration) -> bool {
        let last = *self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.is_none_or(|at| age <= at.elapsed())
    }

    fn switched(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }
}

/// A pool of up to `max_connections` on the primary among `hosts`, found now, and a task that
/// follows the primary to another server when it changes (stopped when the pool is closed).
pub(crate) async fn watched_pool(
    hosts: Hosts,
    max_connections: u32,
    timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    let primary = hosts.find(timeout).await?;
    let switches = Arc::new(Switches {
        hosts,
        last: Mutex::new(None),
        suspect: Notify::new(),
    });
    let on_connect = Arc::clone(&switches);
    let on_acquire = Arc::clone(&switches);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(timeout)
        // A connection that lands on a standby (the old primary, before the watcher has
        // moved the pool) is refused, and the pool tries again until the acquire deadline.
        .after_connect(move |connection, _| {
            let switches = Arc::clone(&on_connect);
            Box::pin(async move {
                let verdict = switches.hosts.suits(connection).await;
                if verdict.is_err() {
                    switches.suspect.notify_one();
                }
                verdict
            })
        })
        .before_acquire(move |_, meta| {
            let current = on_acquire.is_current(meta.age);
            Box::pin(async move { Ok(current) })
        })
        .connect_with(primary)
        .await?;
    tokio::spawn(watch(switches, pool.clone(), timeout));
    Ok(pool)
}

/// Keeps `pool` on the primary until the pool is closed.
async fn watch(switches: Arc<Switches>, pool: PgPool, timeout: Duration) {
    while !pool.is_closed() {
        let options = pool.connect_options();
        if let Ok(Ok(mut connection)) =
            tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await
        {
            let gone = watch_one(&switches, &mut connection, &pool).await;
            let _ = connection.close_hard().await;
            if !gone {
                return;
            }
        }
        log::warn!(
            "latch: the database at {}:{} stopped answering or no longer accepts writes; \
             looking for the primary",
            options.get_host(),
            options.get_port()
        );
        loop {
            if pool.is_closed() {
                return;
            }
            match switches.hosts.find(timeout).await {
                Ok(primary) => {
                    log::warn!(
                        "latch: the database's primary is at {}:{}",
                        primary.get_host(),
                        primary.get_port()
                    );
                    pool.set_connect_options(primary);
                    switches.switched();
                    break;
                }
                Err(_) => tokio::time::sleep(SEARCH_AGAIN).await,
            }
        }
    }
}

/// Watches the server `connection` reaches until it stops answering, stops accepting writes
/// (when writes are wanted) or a new connection found it read-only: `true` then, `false` when
/// the pool was closed.
async fn watch_one(switches: &Switches, connection: &mut PgConnection, pool: &PgPool) -> bool {
    let mut every = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = switches.suspect.notified() => return true,
        }
        if pool.is_closed() {
            return false;
        }
        // Asked even when any server will do: the answer says it is still there.
        match tokio::time::timeout(ANSWER_WITHIN, accepts_writes(connection)).await {
            Ok(Ok(writable)) if writable || switches.hosts.wanted == Wanted::Any => {}
            _ => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(url: &str) -> Vec<(String, u16)> {
        Hosts::parse(url)
            .expect("a valid URL")
            .servers
            .iter()
            .map(|server| (server.get_host().to_owned(), server.get_port()))
            .collect()
    }

    #[test]
    fn several_hosts_are_read_in_order_and_want_a_primary() {
        let url = "postgres://app:pw@h1:5432,h2:5433,[::1]:5434/db?target_session_attrs=read-write";

        let parsed = Hosts::parse(url).expect("valid");

        assert_eq!(
            hosts(url),
            [
                ("h1".into(), 5432),
                ("h2".into(), 5433),
                // As sqlx reads a single-host URL with this host.
                ("[::1]".into(), 5434)
            ]
        );
        assert_eq!(parsed.wanted, Wanted::ReadWrite);
        assert!(parsed.need_watching());
        for server in &parsed.servers {
            assert_eq!(server.get_username(), "app");
            assert_eq!(server.get_database(), Some("db"));
        }
    }

    #[test]
    fn several_hosts_want_a_primary_unless_any_will_do() {
        let default = Hosts::parse("postgres://u@a,b/db").expect("valid");
        let any = Hosts::parse("postgres://u@a,b/db?target_session_attrs=any&sslmode=disable")
            .expect("valid");

        assert_eq!(default.wanted, Wanted::ReadWrite);
        assert_eq!(any.wanted, Wanted::Any);
        assert!(
            any.need_watching(),
            "several hosts are watched whatever they want"
        );
    }

    #[test]
    fn one_host_is_a_plain_connection_unless_it_must_accept_writes() {
        let plain = Hosts::parse("postgres://u@db.example:6000/app").expect("valid");
        let primary = Hosts::parse("postgres://u@db.example/app?target_session_attrs=primary")
            .expect("valid");

        assert_eq!(
            hosts("postgres://u@db.example:6000/app"),
            [("db.example".into(), 6000)]
        );
        assert!(!plain.need_watching());
        assert!(primary.need_watching());
    }

    #[test]
    fn other_target_session_attrs_and_empty_hosts_are_refused() {
        for url in [
            "postgres://u@a,b/db?target_session_attrs=read-only",
            "postgres://u@a,b/db?target_session_attrs=standby",
            "postgres://u@a,,b/db",
            "postgres://u@a,b:notaport/db",
            "a,b/db",
        ] {
            assert!(Hosts::parse(url).is_err(), "{url}");
        }
    }
}
