//! Hearing other instances' session changes on Postgres (`LISTEN latch_sessions`, fed by the
//! trigger in `migrations/postgres`), and evicting those sessions from this instance's cache.

use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

use super::{CachedStore, PostgresStore};
use crate::session::IdHash;

/// The channel the trigger notifies.
pub const CHANNEL: &str = "latch_sessions";
/// Wait before listening again after the connection failed.
const RETRY: Duration = Duration::from_secs(1);
/// How often the listening connection is checked.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// How long the cache may serve reads after the connection last answered.
const LEASE: Duration = Duration::from_secs(2);

/// Keeps `cache` in step with changes other instances make, until the cache is dropped.
///
/// `instance` is this instance's `application_name`, which the trigger puts in front of every
/// change it announces: changes this instance made itself are already in its cache. The cache
/// is trusted only while the listening connection is up and answering; whenever it drops,
/// changes may have been missed, so the cache is emptied and reads go to the database until
/// the listener is back.
pub async fn invalidate_on_notify(
    pool: PgPool,
    cache: Weak<CachedStore<PostgresStore>>,
    instance: String,
) {
    loop {
        let Some(store) = cache.upgrade() else { return };
        store.distrust();
        drop(store);
        match listen(&pool).await {
            Ok(listener) => follow(listener, &cache, &instance).await,
            Err(error) => log::warn!("cannot listen for session changes, retrying: {error}"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnecting is this module's business: it must distrust the cache in between.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Applies notifications until the connection drops, stops answering, or the cache is gone.
/// Every `HEARTBEAT` the connection is asked a trivial query; each answer renews the cache's
/// lease, so a connection that hangs (a network partition) stops the cache within `LEASE`.
async fn follow(
    mut listener: PgListener,
    cache: &Weak<CachedStore<PostgresStore>>,
    instance: &str,
) {
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
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
                let ping = sqlx::query("select 1").execute(&mut listener);
                let answered = matches!(tokio::time::timeout(HEARTBEAT, ping).await, Ok(Ok(_)));
                match cache.upgrade() {
                    Some(store) if answered => store.trust_for(LEASE),
                    _ => return,
                }
                continue;
            }
        };
        let Some(store) = cache.upgrade() else { return };
        match parse(notification.payload()) {
            Some((from, _)) if from == instance => {}
            Some((_, id)) => store.invalidate(&id),
            // Not ours to read: forget everything rather than risk a stale session.
            None => {
                store.distrust();
                store.trust_for(LEASE);
            }
        }
    }
}

/// `"<application_name> <64 hex digits>"` → the name and the ID hash.
fn parse(payload: &str) -> Option<(&str, IdHash)> {
    let (from, digits) = payload.rsplit_once(' ')?;
    let mut hash = [0u8; 32];
    hex::decode_to_slice(digits, &mut hash).ok()?;
    Some((from, IdHash(hash)))
}

/// A name for this instance's connections that no other instance shares.
pub fn instance_name() -> String {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes);
    format!("latch-{}", hex::encode(bytes))
}

/// Starts [`invalidate_on_notify`] for `store`.
pub fn spawn(pool: PgPool, store: &Arc<CachedStore<PostgresStore>>, instance: String) {
    tokio::spawn(invalidate_on_notify(pool, Arc::downgrade(store), instance));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_the_instance_and_the_session() {
        let hex = "ab".repeat(32);
        let payload = format!("latch-0011 {hex}");

        let (from, id) = parse(&payload).expect("parsed");

        assert_eq!(from, "latch-0011");
        assert_eq!(id.0, [0xab; 32]);
        assert!(parse("latch-0011 xyz").is_none());
        assert!(parse(&format!("latch {}", "zz".repeat(32))).is_none());
    }
}
