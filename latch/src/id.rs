//! Session IDs: random bearer tokens, and the SHA-256 hashes the store keeps instead of them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Bytes of randomness in a session ID (256 bits: far past guessing, twice the usual 128-bit floor).
const ID_BYTES: usize = 32;
/// Length of an ID in its URL-safe base64 form (no padding).
const ENCODED_LEN: usize = 43;

/// A session ID: the secret a browser presents, inside the private cookie, to claim a session.
///
/// It is never stored and never logged: the store sees only its [`IdHash`], and `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    /// A fresh ID from the thread-local CSPRNG (ChaCha, reseeded from the operating system).
    pub fn generate() -> Self {
        let mut bytes = [0u8; ID_BYTES];
        rand::fill(&mut bytes);
        Self(bytes)
    }

    /// Parses the cookie form of an ID; anything but exactly 43 URL-safe base64 characters that
    /// decode to 32 bytes is rejected, before any decoding work on oversized input.
    pub fn parse(encoded: &str) -> Option<Self> {
        if encoded.len() != ENCODED_LEN {
            return None;
        }
        let mut bytes = [0u8; ID_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(encoded, &mut bytes) {
            Ok(ID_BYTES) => Some(Self(bytes)),
            _ => None,
        }
    }

    /// The cookie form: URL-safe base64 without padding.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The raw 32 bytes, for derivations inside the session layer (never stored or logged).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key the store files this session under.
    pub fn hash(&self) -> IdHash {
        IdHash(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

/// SHA-256 of a [`SessionId`]: the primary key of the `sessions` table. A leaked table or backup
/// holds only these, and a hash cannot be turned back into a cookie.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IdHash(pub [u8; 32]);

impl IdHash {
    /// The raw 32 bytes, as bound to SQL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_through_their_cookie_form() {
        let id = SessionId::generate();
        let encoded = id.encode();
        assert_eq!(encoded.len(), ENCODED_LEN);
        assert_eq!(SessionId::parse(&encoded), Some(id));
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(SessionId::generate(), SessionId::generate());
    }

    #[test]
    fn malformed_ids_are_rejected() {
        let valid = SessionId::generate().encode();
        for bad in [
            "",
            "short",
            &valid[..42],
            &format!("{valid}A"),
            &"A".repeat(10_000),
            // right length, but not URL-safe base64
            &format!("{}+", &valid[..42]),
            &format!("{}=", &valid[..42]),
            &"é".repeat(21),
        ] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?} should be rejected");
        }
    }

    #[test]
    fn the_hash_is_sha256_of_the_raw_id() {
        let id = SessionId([0u8; ID_BYTES]);
        let expected: [u8; 32] = Sha256::digest([0u8; ID_BYTES]).into();
        assert_eq!(id.hash().0, expected);
        assert_ne!(id.hash().0, id.0);
    }

    #[test]
    fn debug_output_never_shows_the_id() {
        let id = SessionId::generate();
        assert!(!format!("{id:?}").contains(&id.encode()));
    }
}
