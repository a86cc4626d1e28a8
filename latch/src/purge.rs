//! Removing expired sessions: a one-pass function, and a background task that runs it on a timer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::Shutdown;
use tokio::time::MissedTickBehavior;

use crate::{Clock, ExpiredDeletion, SessionManager, SessionStore, StoreError, error_chain};

/// How much longer than a batch took the purge pauses after it: the database spends at most a
/// fifth of its time on a backlog (the factor was chosen by measurement: `docs/BENCHMARKS.md`).
const PAUSE_FACTOR: u32 = 4;
/// Longest pause between two purge batches.
const MAX_PAUSE: Duration = Duration::from_millis(200);

/// Deletes every session that expired at or before `now`, at most `batch_size` rows per statement,
/// so a large backlog is worked off in short transactions that requests can slip between.
/// Returns how many rows it removed. Safe to run from several app instances at once.
///
/// After each full batch it pauses `PAUSE_FACTOR` times as long as the batch took (up to 200 ms):
/// a backlog of a million rows then takes at most a fifth of the database's time, and requests
/// keep the rest.
///
/// # Errors
///
/// The store's error for the batch that failed; the batches before it stay deleted.
pub async fn purge_expired(
    store: &dyn ExpiredDeletion,
    now: time::OffsetDateTime,
    batch_size: u32,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let started = Instant::now();
        let deleted = store.delete_expired(now, batch_size).await?;
        total += deleted;
        if deleted < u64::from(batch_size) {
            return Ok(total);
        }
        tokio::time::sleep((started.elapsed() * PAUSE_FACTOR).min(MAX_PAUSE)).await;
    }
}

/// Starts the purge task for `manager`'s store ([`Latch`](crate::Latch) does at liftoff). It
/// runs every `purge_interval` seconds (the first pass one interval after launch) and stops when
/// `shutdown` fires; a failed pass is logged and retried on the next tick. A store without an
/// [`ExpiredDeletion`] gets no task.
pub(crate) fn start(manager: &SessionManager, shutdown: Shutdown) {
    let store = Arc::clone(manager.store());
    if store.expired_deletion().is_none() {
        log::info!("latch: this session store deletes no expired sessions, so nothing is purged");
        return;
    }
    let config = manager.config();
    let every = Duration::from_secs(config.purge_interval);
    let clock = manager.clock().clone();
    tokio::spawn(run(store, clock, every, config.purge_batch_size, shutdown));
}

async fn run(
    store: Arc<dyn SessionStore>,
    clock: Clock,
    every: Duration,
    batch_size: u32,
    shutdown: Shutdown,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let pass = async {
        loop {
            ticker.tick().await;
            let started = Instant::now();
            let Some(expired) = store.expired_deletion() else {
                return;
            };
            match purge_expired(expired, clock.now(), batch_size).await {
                Ok(0) => log::debug!("session purge: nothing expired"),
                Ok(removed) => log::info!(
                    "session purge: removed {removed} expired sessions in {} ms",
                    started.elapsed().as_millis()
                ),
                Err(error) => log::warn!(
                    "session purge failed, retrying next interval: {}",
                    error_chain(&error)
                ),
            }
        }
    };
    tokio::select! {
        () = pass => {}
        _ = shutdown => log::debug!("session purge stopped"),
    }
}
