//! A read-only look at the current request's own session, for pages that explain sessions: the
//! row as stored and its deadlines, with the ID and its hash cut down to short prefixes.

use super::{IdHash, Record, Session, SessionError, SessionId};

/// Characters of the session ID an [`Inspection`] keeps: enough to tell two sessions apart on a
/// screen, while the other 37 of its 43 characters stay secret, far past guessing.
pub const ID_PREFIX_CHARS: usize = 6;

/// Hex digits of the ID hash an [`Inspection`] keeps: enough to spot the row in the table by eye.
pub const HASH_PREFIX_HEX_DIGITS: usize = 8;

/// The current request's own session as the server holds it, from [`Session::inspect`].
///
/// It never holds the whole session ID (the secret the cookie carries) nor its whole hash (the
/// row's key): only prefixes, cut inside this crate, so a page that shows an `Inspection` cannot
/// show more than that by mistake.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Inspection {
    /// The first [`ID_PREFIX_CHARS`] characters of the ID's cookie form (URL-safe base64).
    pub id_prefix: String,
    /// The first [`HASH_PREFIX_HEX_DIGITS`] lowercase hex digits of the ID's SHA-256.
    pub hash_prefix: String,
    /// The row as stored: data, version, creation time and idle deadline (`expires_at`).
    pub record: Record,
    /// When the session ends however busy it is (`created_at` plus `absolute_timeout`). The
    /// idle deadline never passes it.
    pub absolute_deadline: time::OffsetDateTime,
    /// For a signed-in session, when it was last used, as of its last write or deadline
    /// extension; the user it belongs to is in `record.user`.
    pub last_seen: Option<time::OffsetDateTime>,
}

impl Session<'_> {
    /// This request's session, for showing to its owner: `None` when it has none.
    ///
    /// Like [`get`](Self::get), it first confirms a cached copy that may not have heard of
    /// another instance's change, so it never shows data (or a session) that is gone. It writes
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`SessionError::Unavailable`] (503) when the store cannot be reached while confirming.
    pub async fn inspect(&self) -> Result<Option<Inspection>, SessionError> {
        let Some((id, record)) = self.confirmed().await? else {
            return Ok(None);
        };
        let absolute_deadline = record
            .created_at
            .saturating_add(time::Duration::milliseconds(
                self.manager.config.absolute_timeout_ms(),
            ));
        let last_seen = match &record.user {
            // `last_seen` is kept for a user's device list; this session is one of them.
            Some(user) => self
                .manager
                .users()?
                .user_sessions(&user.user_id, Some(&id.hash()), self.manager.now())
                .await?
                .into_iter()
                .find(|device| device.current)
                .map(|device| device.last_seen),
            None => None,
        };
        Ok(Some(Inspection {
            id_prefix: id_prefix(&id),
            hash_prefix: hash_prefix(&id.hash()),
            record,
            absolute_deadline,
            last_seen,
        }))
    }
}

fn id_prefix(id: &SessionId) -> String {
    id.encode().chars().take(ID_PREFIX_CHARS).collect()
}

/// Encodes only the bytes the prefix needs: the whole hash is never even written out.
fn hash_prefix(hash: &IdHash) -> String {
    hex::encode(&hash.0[..HASH_PREFIX_HEX_DIGITS / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefixes_are_short_beginnings_of_the_whole() {
        let id = SessionId::generate();
        let hash = id.hash();

        let (id_part, hash_part) = (id_prefix(&id), hash_prefix(&hash));

        assert_eq!(id_part.len(), ID_PREFIX_CHARS);
        assert!(id.encode().starts_with(&id_part));
        assert_eq!(hash_part.len(), HASH_PREFIX_HEX_DIGITS);
        assert!(hex::encode(hash.0).starts_with(&hash_part));
    }
}
