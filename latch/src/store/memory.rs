//! `MemoryStore`: sessions in a map in this process, for tests and for apps that may lose every
//! session when they restart.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

use super::{ExpiredDeletion, Record, Rekeyed, SessionStore, StoreError, UserIndex};
use crate::IdHash;
use crate::user::{Device, Revoke};

/// Sessions kept in memory: the whole store contract (sessions, the purge, the per-user index)
/// with nothing to run and nothing kept across a restart. For tests above all (see
/// [`Latch::in_memory`](crate::Latch::in_memory)); a single instance that may forget every
/// session when it restarts can use it too.
///
/// ```
/// use latch::{Latch, MemoryStore};
///
/// let rocket = rocket::build().attach(Latch::with_store(MemoryStore::new()));
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<IdHash, Stored>,
    /// Each user's auth epoch (see [`UserIndex::bump_auth_epoch`]).
    epochs: HashMap<String, i64>,
}

/// A session and what the store keeps beside it.
#[derive(Debug)]
struct Stored {
    record: Record,
    last_seen: OffsetDateTime,
    /// The user's auth epoch at sign-in; `None` for a session created signed in some other way,
    /// which any new epoch ends.
    auth_epoch: Option<i64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change below is made in one step under the lock: a panic cannot leave half of
        // one behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn live(&self, id: &IdHash, now: OffsetDateTime) -> Option<&Stored> {
        self.sessions
            .get(id)
            .filter(|stored| stored.record.expires_at > now)
    }

    /// A rekey or sign-in of `old` to `new` (see [`SessionStore::rekey`]); `epoch` is the
    /// user's auth epoch for a sign-in, `None` for a plain rekey.
    fn rekey(
        &mut self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
        epoch: Option<i64>,
    ) -> Rekeyed {
        let Some(current) = self.live(old, now) else {
            return Rekeyed::Gone;
        };
        let same_user = match (&record.user, &current.record.user) {
            (None, _) => true,
            (Some(next), Some(stored)) => next.user_id == stored.user_id,
            (Some(_), None) => false,
        };
        if current.record.version != record.version - 1 || (epoch.is_none() && !same_user) {
            return Rekeyed::Gone;
        }
        if old != new && self.sessions.contains_key(new) {
            return Rekeyed::IdTaken;
        }
        let auth_epoch = match (&record.user, epoch) {
            (None, _) => None,
            (Some(_), Some(epoch)) => Some(epoch),
            (Some(_), None) => current.auth_epoch,
        };
        self.sessions.remove(old);
        self.sessions.insert(
            *new,
            Stored {
                record: record.clone(),
                last_seen: now,
                auth_epoch,
            },
        );
        Rekeyed::Done
    }

    fn is_users(stored: &Stored, user_id: &str) -> bool {
        stored
            .record
            .user
            .as_ref()
            .is_some_and(|user| user.user_id == user_id)
    }

    /// Deletes the user's sessions that `end` picks, and returns their ID hashes.
    fn end(&mut self, user_id: &str, end: impl Fn(&IdHash, &Stored) -> bool) -> Vec<IdHash> {
        let ended: Vec<IdHash> = self
            .sessions
            .iter()
            .filter(|(id, stored)| Self::is_users(stored, user_id) && end(id, stored))
            .map(|(id, _)| *id)
            .collect();
        for id in &ended {
            self.sessions.remove(id);
        }
        ended
    }
}

#[async_trait::async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.sessions.contains_key(id) {
            return Ok(false);
        }
        state.sessions.insert(
            *id,
            Stored {
                record: record.clone(),
                last_seen: record.created_at,
                auth_epoch: None,
            },
        );
        Ok(true)
    }

    async fn load(&self, id: &IdHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError> {
        Ok(self
            .state()
            .live(id, now)
            .map(|stored| stored.record.clone()))
    }

    async fn save(
        &self,
        id: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(stored) = state.sessions.get_mut(id) else {
            return Ok(false);
        };
        if stored.record.expires_at <= now || stored.record.version != record.version - 1 {
            return Ok(false);
        }
        // The data, version and deadline; who the session belongs to changes only by rekey
        // or sign-in.
        stored.record.data.clone_from(&record.data);
        stored.record.version = record.version;
        stored.record.expires_at = record.expires_at;
        stored.last_seen = now;
        Ok(true)
    }

    async fn touch(
        &self,
        id: &IdHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.sessions.get_mut(id) {
            Some(stored)
                if stored.record.expires_at > now && stored.record.expires_at < expires_at =>
            {
                stored.record.expires_at = expires_at;
                stored.last_seen = now;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn rekey(
        &self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        Ok(self.state().rekey(old, new, record, now, None))
    }

    async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
        self.state().sessions.remove(id);
        Ok(())
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl ExpiredDeletion for MemoryStore {
    async fn delete_expired(&self, now: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        let mut state = self.state();
        let expired: Vec<IdHash> = state
            .sessions
            .iter()
            .filter(|(_, stored)| stored.record.expires_at <= now)
            .map(|(id, _)| *id)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        for id in &expired {
            state.sessions.remove(id);
        }
        Ok(expired.len() as u64)
    }
}

#[async_trait::async_trait]
impl UserIndex for MemoryStore {
    async fn sign_in(
        &self,
        old: Option<&IdHash>,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        let Some(user) = &record.user else {
            return Err(StoreError::failed("a sign-in needs a signed-in record"));
        };
        let mut state = self.state();
        let epoch = *state.epochs.entry(user.user_id.clone()).or_insert(0);
        if let Some(old) = old {
            return Ok(state.rekey(old, new, record, now, Some(epoch)));
        }
        if state.sessions.contains_key(new) {
            return Ok(Rekeyed::IdTaken);
        }
        state.sessions.insert(
            *new,
            Stored {
                record: record.clone(),
                last_seen: now,
                auth_epoch: Some(epoch),
            },
        );
        Ok(Rekeyed::Done)
    }

    async fn user_sessions(
        &self,
        user_id: &str,
        current: Option<&IdHash>,
        now: OffsetDateTime,
    ) -> Result<Vec<Device>, StoreError> {
        let state = self.state();
        let mut devices: Vec<Device> = state
            .sessions
            .iter()
            .filter(|(_, stored)| stored.record.expires_at > now)
            .filter_map(|(id, stored)| {
                let user = stored.record.user.as_ref()?;
                (user.user_id == user_id).then(|| Device {
                    handle: user.handle,
                    signed_in_at: user.signed_in_at,
                    last_seen: stored.last_seen,
                    client: user.client.clone(),
                    current: current == Some(id),
                })
            })
            .collect();
        devices.sort_by(|a, b| {
            (a.signed_in_at, a.handle.as_bytes()).cmp(&(b.signed_in_at, b.handle.as_bytes()))
        });
        Ok(devices)
    }

    async fn revoke(&self, user_id: &str, which: Revoke<'_>) -> Result<Vec<IdHash>, StoreError> {
        let mut state = self.state();
        Ok(match which {
            Revoke::Handle(handle) => state.end(user_id, |_, stored| {
                stored
                    .record
                    .user
                    .as_ref()
                    .is_some_and(|user| &user.handle == handle)
            }),
            Revoke::AllBut(keep) => state.end(user_id, |id, _| id != keep),
            Revoke::All => state.end(user_id, |_, _| true),
        })
    }

    async fn bump_auth_epoch(
        &self,
        user_id: &str,
        keep: Option<&IdHash>,
    ) -> Result<Vec<IdHash>, StoreError> {
        let mut state = self.state();
        let epoch = {
            let epoch = state.epochs.entry(user_id.to_owned()).or_insert(0);
            *epoch += 1;
            *epoch
        };
        if let Some(stored) = keep.and_then(|keep| state.sessions.get_mut(keep))
            && State::is_users(stored, user_id)
        {
            stored.auth_epoch = Some(epoch);
        }
        Ok(state.end(user_id, |_, stored| {
            stored.auth_epoch.is_none_or(|signed_in| signed_in < epoch)
        }))
    }
}
