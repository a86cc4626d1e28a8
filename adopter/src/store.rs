//! `ShopStore`: the shop's own session store, a map behind a mutex, written against latch's
//! store contract ([`latch::SessionStore`] and [`latch::ExpiredDeletion`]) the way a team
//! writing a Redis or DynamoDB store would. It keeps no per-user index, so a session kept in
//! it cannot be signed in.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use latch::time::OffsetDateTime;
use latch::{ExpiredDeletion, IdHash, Record, Rekeyed, SessionStore, StoreError};

/// Sessions in a map in this process, by the hash of their ID.
#[derive(Debug, Default)]
pub struct ShopStore {
    sessions: Mutex<HashMap<IdHash, Record>>,
}

impl ShopStore {
    fn sessions(&self) -> MutexGuard<'_, HashMap<IdHash, Record>> {
        // Each change is one step under the lock: a panic cannot leave half of one behind.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The session under `id` if it is live at `now`: an expired one is no session, even before
/// the purge deletes it.
fn live<'a>(
    sessions: &'a mut HashMap<IdHash, Record>,
    id: &IdHash,
    now: OffsetDateTime,
) -> Option<&'a mut Record> {
    sessions
        .get_mut(id)
        .filter(|record| record.expires_at > now)
}

#[latch::async_trait]
impl SessionStore for ShopStore {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
        let mut sessions = self.sessions();
        if live(&mut sessions, id, record.created_at).is_some() {
            return Ok(false);
        }
        sessions.insert(*id, record.clone());
        Ok(true)
    }

    async fn load(&self, id: &IdHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError> {
        Ok(live(&mut self.sessions(), id, now).map(|record| record.clone()))
    }

    async fn save(
        &self,
        id: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut sessions = self.sessions();
        let Some(stored) = live(&mut sessions, id, now) else {
            return Ok(false);
        };
        if stored.version != record.version - 1 {
            return Ok(false);
        }
        // Data, version and deadline; who the session belongs to changes only by rekey.
        stored.data.clone_from(&record.data);
        stored.version = record.version;
        stored.expires_at = record.expires_at;
        Ok(true)
    }

    async fn touch(
        &self,
        id: &IdHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        match live(&mut self.sessions(), id, now) {
            Some(stored) if stored.expires_at < expires_at => {
                stored.expires_at = expires_at;
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
        let mut sessions = self.sessions();
        let Some(current) = live(&mut sessions, old, now) else {
            return Ok(Rekeyed::Gone);
        };
        // A rekey may keep the user or clear it, never change it.
        let same_user = record.user.as_ref().is_none_or(|next| {
            current
                .user
                .as_ref()
                .is_some_and(|user| user.user_id == next.user_id)
        });
        if current.version != record.version - 1 || !same_user {
            return Ok(Rekeyed::Gone);
        }
        if old != new && live(&mut sessions, new, now).is_some() {
            return Ok(Rekeyed::IdTaken);
        }
        sessions.remove(old);
        sessions.insert(*new, record.clone());
        Ok(Rekeyed::Done)
    }

    async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
        self.sessions().remove(id);
        Ok(())
    }

    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        Some(self)
    }
}

#[latch::async_trait]
impl ExpiredDeletion for ShopStore {
    async fn delete_expired(&self, now: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        let mut sessions = self.sessions();
        let expired: Vec<IdHash> = sessions
            .iter()
            .filter(|(_, record)| record.expires_at <= now)
            .map(|(id, _)| *id)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        for id in &expired {
            sessions.remove(id);
        }
        Ok(u64::try_from(expired.len()).unwrap_or(u64::MAX))
    }
}
