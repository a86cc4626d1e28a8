//! Hearing other instances' session changes on Postgres (`LISTEN latch_sessions`, or the
//! channel of the store's [`Table`](crate::Table), fed by the trigger in
//! `migrations/postgres`), and evicting those sessions from this instance's cache.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgNotification, PgPool, PgPoolOptions};
use tokio::sync::{mpsc, oneshot};

use super::CachedStore;
use super::cached::Memory;
use crate::IdHash;

/// Wait before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);
/// How often the listening connection is checked.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// How long the cache may serve reads after the connection last answered.
const LEASE: Duration = Duration::from_secs(2);

/// How long a probe notification may take to come back before the connection is taken for one
/// a transaction pooler shares (where it never comes back): far longer than Postgres takes
/// even when busy, since a wrong verdict refuses the start.
const DELIVERY: Duration = Duration::from_secs(5);

/// How many times [`keeps_sessions`] looks for a setting crossing between two connections.
const SESSION_PROBES: usize = 3;

/// Whether connections of `pool` are sessions of their own, as `LISTEN`, latch's migrations
/// and prepared statements need: true on Postgres itself and through a pooler in session
/// mode; false through a transaction pooler (PgBouncer in transaction mode), which lends a
/// client a server connection only for a transaction, so that a `LISTEN` hears nothing.
///
/// Two checks, both in simple queries (which any pooler carries). First, a setting made on
/// one connection must neither show up on another nor be gone from its own: through a
/// transaction pooler, the server connection the setting was made on goes back to the pool
/// and is most likely the next one lent out. That check has no side effects; only if it
/// passes does the second run: a `NOTIFY` from one connection must reach a `LISTEN` on
/// another. (Run first through a transaction pooler, the `LISTEN` would stay on a shared
/// server connection and hand its notification to whichever client is using it then.)
pub(crate) async fn delivers(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let probe = instance_name().replace('-', "_");
    // Connections of the probe's own, two at a time, whatever size `pool` is.
    let probes = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .connect_lazy_with(pool.connect_options().as_ref().clone());
    let verdict = match keeps_sessions(&probes, &probe).await {
        Ok(true) => hears_notifications(&probes, &probe).await,
        other => other,
    };
    probes.close().await;
    verdict
}

async fn keeps_sessions(pool: &PgPool, probe: &str) -> Result<bool, sqlx::Error> {
    let mut setter = pool.acquire().await?;
    let mut other = pool.acquire().await?;
    // `probe` is `latch_` and hex digits: nothing to quote.
    let set = format!("set latch.session_probe = '{probe}'");
    let read = "select current_setting('latch.session_probe', true)";
    let mut kept = true;
    for _ in 0..SESSION_PROBES {
        sqlx::raw_sql(sqlx::AssertSqlSafe(set.clone()))
            .execute(&mut *setter)
            .await?;
        let crossed = setting(&mut other, read).await?;
        let stayed = setting(&mut setter, read).await?;
        if crossed.as_deref() == Some(probe) || stayed.as_deref() != Some(probe) {
            kept = false;
            break;
        }
    }
    // Tidy, where it can: through a transaction pooler this lands on any server connection.
    sqlx::raw_sql("reset latch.session_probe")
        .execute(&mut *setter)
        .await?;
    Ok(kept)
}

async fn setting(
    connection: &mut sqlx::PgConnection,
    read: &'static str,
) -> Result<Option<String>, sqlx::Error> {
    use sqlx::Row as _;
    let row = sqlx::raw_sql(read).fetch_one(connection).await?;
    row.try_get(0)
}

async fn hears_notifications(pool: &PgPool, probe: &str) -> Result<bool, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(probe).await?;
    // Sent on a listener's connection too, which keeps a notification it receives itself
    // rather than failing on it.
    let mut sender = PgListener::connect_with(pool).await?;
    let notify = format!("notify {probe}, '{probe}'");
    sqlx::raw_sql(sqlx::AssertSqlSafe(notify))
        .execute(&mut sender)
        .await?;
    let heard = async {
        loop {
            match listener.try_recv().await? {
                Some(notification) if notification.payload() == probe => return Ok(true),
                Some(_) => {}
                None => return Ok(false),
            }
        }
    };
    tokio::time::timeout(DELIVERY, heard)
        .await
        .unwrap_or(Ok(false))
}

/// Keeps `cache` in step with changes other instances make, until the cache is dropped.
///
/// `instance` is this instance's `application_name`, which the trigger puts in front of every
/// change it announces: changes this instance made itself are already in its cache. The cache
/// is trusted only while the listening connection is up and answering; whenever it drops,
/// changes may have been missed, so the cache is emptied and reads go to the database until
/// the listener is back.
pub(crate) async fn invalidate_on_notify(
    pool: PgPool,
    channel: String,
    cache: Weak<Memory>,
    instance: String,
    mut barriers: mpsc::Receiver<oneshot::Sender<()>>,
) {
    // The cache starts distrusted; `follow` trusts it once the connection answers.
    loop {
        // The server the pool points at now: if the pool moves (a failover), so does this.
        let server = pool.connect_options();
        match listen(&pool, &channel).await {
            Ok(listener) => {
                let moved = || !Arc::ptr_eq(&server, &pool.connect_options());
                follow(listener, &cache, &instance, &mut barriers, moved).await;
            }
            Err(error) => log::warn!("cannot listen for session changes, retrying: {error}"),
        }
        // Changes may go unheard from here on: read through until the listener is back, and
        // whoever still waits at a barrier reads the database instead.
        let Some(store) = cache.upgrade() else { return };
        store.distrust();
        drop(store);
        while barriers.try_recv().is_ok() {}
        tokio::time::sleep(RETRY).await;
    }
}

async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnecting is this module's business: it must distrust the cache in between.
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

/// Applies notifications until the connection drops, stops answering, the pool has `moved`
/// to another server (notifications are not sent on a standby), or the cache is gone.
/// Every `HEARTBEAT` the connection is asked a trivial query; each answer renews the cache's
/// lease, so a connection that hangs (a network partition) stops the cache within `LEASE`.
///
/// Barriers waiting together share one `select 1` on the listening connection: Postgres sends a
/// listener every notification committed before a query ends ahead of that query's answer, so
/// once the answer is in, applying what was received catches the cache up.
async fn follow(
    mut listener: PgListener,
    cache: &Weak<Memory>,
    instance: &str,
    barriers: &mut mpsc::Receiver<oneshot::Sender<()>>,
    moved: impl Fn() -> bool,
) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut waiting = Vec::new();
    loop {
        // Upgraded only between waits: the listener must not keep a dropped store alive.
        let notification = tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(notification)) => notification,
                Ok(None) => return,
                Err(error) => {
                    log::warn!("lost the session-change listener: {error}");
                    return;
                }
            },
            _ = heartbeat.tick() => {
                if moved() || !catch_up(&mut listener, cache, instance).await {
                    return;
                }
                continue;
            }
            count = barriers.recv_many(&mut waiting, 1024) => {
                if count == 0 || moved() || !catch_up(&mut listener, cache, instance).await {
                    return;
                }
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
                continue;
            }
        };
        let Some(store) = cache.upgrade() else { return };
        apply(&store, notification.payload(), instance);
    }
}

/// One `select 1` on the listening connection, then every notification it brought in applied,
/// and the cache's lease renewed. `false` if the connection did not answer or the cache is gone.
async fn catch_up(listener: &mut PgListener, cache: &Weak<Memory>, instance: &str) -> bool {
    let ping = sqlx::query("select 1").execute(&mut *listener);
    if !matches!(tokio::time::timeout(HEARTBEAT, ping).await, Ok(Ok(_))) {
        return false;
    }
    let Some(store) = cache.upgrade() else {
        return false;
    };
    // Notifications that arrived with the answer are buffered: take them without waiting.
    while let Some(notification) = buffered(listener) {
        apply(&store, notification.payload(), instance);
    }
    store.trust_for(LEASE);
    true
}

/// The next notification the listener already holds, if any. `try_recv` answers from its
/// buffer on the first poll; when the buffer is empty it would wait on the socket, so it is
/// polled once and dropped (a timer, even of zero length, would cost a timer tick).
fn buffered(listener: &mut PgListener) -> Option<PgNotification> {
    let mut next = std::pin::pin!(listener.try_recv());
    let mut context = Context::from_waker(Waker::noop());
    match next.as_mut().poll(&mut context) {
        Poll::Ready(Ok(notification)) => notification,
        _ => None,
    }
}

fn apply(store: &Memory, payload: &str, instance: &str) {
    match parse(payload) {
        Some((from, _)) if from == instance => {}
        Some((_, ids)) => ids.iter().for_each(|id| store.invalidate(id)),
        // Not ours to read: forget everything rather than risk a stale session.
        None => {
            store.distrust();
            store.trust_for(LEASE);
        }
    }
}

/// `"<application_name> <hex>,<hex>,…"` (64 hex digits per ID hash) → the name and the hashes.
fn parse(payload: &str) -> Option<(&str, Vec<IdHash>)> {
    let (from, list) = payload.rsplit_once(' ')?;
    let ids = list
        .split(',')
        .map(|digits| {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(digits, &mut hash).ok()?;
            Some(IdHash(hash))
        })
        .collect::<Option<_>>()?;
    Some((from, ids))
}

/// A name for this instance's connections that no other instance shares.
pub(crate) fn instance_name() -> String {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes);
    format!("latch-{}", hex::encode(bytes))
}

/// Starts [`invalidate_on_notify`] for `store`, answering the barriers sent to `barriers`.
pub(crate) fn spawn<S: super::SessionStore>(
    pool: PgPool,
    store: &CachedStore<S>,
    channel: String,
    instance: String,
    barriers: mpsc::Receiver<oneshot::Sender<()>>,
) {
    tokio::spawn(invalidate_on_notify(
        pool,
        channel,
        Arc::downgrade(store.memory()),
        instance,
        barriers,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_the_instance_and_the_sessions() {
        let (a, b) = ("ab".repeat(32), "0c".repeat(32));

        let (single, pair) = (format!("latch-0011 {a}"), format!("latch-0011 {a},{b}"));

        let (from, one) = parse(&single).expect("one ID");
        let (_, two) = parse(&pair).expect("two IDs");

        assert_eq!(from, "latch-0011");
        assert_eq!(one, vec![IdHash([0xab; 32])]);
        assert_eq!(two, vec![IdHash([0xab; 32]), IdHash([0x0c; 32])]);
        assert!(parse("latch-0011 xyz").is_none());
        assert!(parse(&format!("latch-0011 {a},")).is_none());
        assert!(parse(&format!("latch {}", "zz".repeat(32))).is_none());
    }
}
