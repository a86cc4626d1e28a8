//! Password hashing: argon2id with its parameters in one place. A hash made under older
//! parameters still verifies, and is replaced at the next successful sign-in.

use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Fewest characters a password may have.
pub const MIN_CHARS: usize = 8;
/// Most characters a password may have: bounds the work one sign-in can ask for.
pub const MAX_CHARS: usize = 1024;

/// OWASP's first argon2id choice: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

fn hasher() -> Argon2<'static> {
    // The parameters are constants within argon2's limits, so this cannot fail; the default
    // would be the same parameters anyway.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// What a password needs before it is worth hashing: 8 to 1024 characters.
///
/// # Errors
///
/// The sentence to show the user.
pub fn check(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(format!("A password needs at least {MIN_CHARS} characters."));
    }
    if chars > MAX_CHARS {
        return Err(format!(
            "A password may have at most {MAX_CHARS} characters."
        ));
    }
    Ok(())
}

/// The PHC string of `password` under the current parameters, with a fresh random salt. Slow
/// on purpose (tens of milliseconds): call it off the async threads.
///
/// # Errors
///
/// argon2's error (none is expected for a checked password).
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(hasher().hash_password(password.as_bytes())?.to_string())
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password (or no such account).
    No,
    /// Right, and the hash uses the current parameters.
    Yes,
    /// Right, but the hash uses older parameters: store a new one.
    YesRehash,
}

/// Checks `password` against `stored`, or, for an unknown user (`None`), against a hash of
/// nothing, so a wrong username takes as long as a wrong password. Slow, as [`hash`] is.
pub fn verify(password: &str, stored: Option<&str>) -> Verified {
    let Some(stored) = stored else {
        if let Some(unknown) = &*UNKNOWN_USER {
            let _ = hasher().verify_password(password.as_bytes(), unknown);
        }
        return Verified::No;
    };
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Verified::No;
    };
    if hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Verified::No;
    }
    let current = Params::try_from(&parsed).ok()
        == Params::new(MEMORY_KIB, PASSES, LANES, None).ok()
        && parsed.algorithm == Algorithm::Argon2id.ident();
    if current {
        Verified::Yes
    } else {
        Verified::YesRehash
    }
}

/// Makes the hash [`verify`] checks unknown usernames against, so the first such sign-in does
/// not take twice as long as a wrong password (which would tell that the username is unknown).
/// Slow, as [`hash`] is: call it off the async threads, once at start.
pub fn prepare() {
    LazyLock::force(&UNKNOWN_USER);
}

/// A hash of a random secret, made once, for [`verify`] to spend the same time on an unknown
/// username as on a known one.
static UNKNOWN_USER: LazyLock<Option<PasswordHash>> = LazyLock::new(|| {
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    hasher().hash_password_with_salt(&secret, &salt).ok()
});
