//! Password hashing: argon2id with its parameters in one place, run in a bounded number of
//! slots. A hash made under older parameters still verifies, and is replaced at the next
//! successful sign-in.

use std::cell::RefCell;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::password_hash::{self, CustomizedPasswordHasher, PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rocket::tokio::sync::Semaphore;

/// Fewest characters a password may have.
pub const MIN_CHARS: usize = 8;
/// Most characters a password may have: bounds the work one sign-in can ask for.
pub const MAX_CHARS: usize = 1024;

/// OWASP's first argon2id choice: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// The current parameters.
fn current_params() -> Params {
    // Constants within argon2's limits, so this cannot fail; the default would be the same
    // parameters anyway.
    Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default()
}

/// argon2id under the current parameters, working in this thread's [`WorkingMemory`].
fn hasher() -> WorkingMemory {
    WorkingMemory
}

thread_local! {
    /// This thread's argon2 working memory (19 MiB under the current parameters), kept from
    /// one hash to the next. argon2's own `hash_password` allocates and frees it every time,
    /// and the system allocator keeps what is freed: a flood of 109 sign-ins on two threads
    /// grew the server by 330 MiB. Kept per thread, it is at most one block a hashing thread.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 with the algorithm, version and parameters each hash names, computed in this thread's
/// [`MEMORY`]. It only supplies the memory: checking a password, through
/// [`PasswordVerifier`], is the `password-hash` crate's own code (constant-time comparison
/// included).
struct WorkingMemory;

impl CustomizedPasswordHasher<PasswordHash> for WorkingMemory {
    type Params = Params;

    fn hash_password_customized(
        &self,
        password: &[u8],
        salt: &[u8],
        algorithm: Option<&str>,
        version: Option<u32>,
        params: Params,
    ) -> password_hash::Result<PasswordHash> {
        let algorithm = algorithm
            .map(Algorithm::try_from)
            .transpose()?
            .unwrap_or_default();
        let version = version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let salt = Salt::new(salt)?;
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let output = buffer
            .get_mut(..params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN))
            .ok_or(password_hash::Error::OutputSize)?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        MEMORY.with_borrow_mut(|memory| {
            let blocks = params.block_count();
            if memory.len() < blocks {
                memory.resize(blocks, Block::default());
            }
            argon2.hash_password_into_with_memory(password, &salt, output, &mut memory[..blocks])
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(Output::new(output)?),
        })
    }
}

impl PasswordHasher<PasswordHash> for WorkingMemory {
    fn hash_password_with_salt(
        &self,
        password: &[u8],
        salt: &[u8],
    ) -> password_hash::Result<PasswordHash> {
        self.hash_password_customized(
            password,
            salt,
            Some(Algorithm::Argon2id.ident().as_str()),
            Some(Version::V0x13.into()),
            current_params(),
        )
    }
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
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    Ok(hasher()
        .hash_password_with_salt(password.as_bytes(), &salt)?
        .to_string())
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password (or no such account).
    No,
    /// Right, and the hash uses the current parameters.
    Yes,
    /// Right, but the hash uses older parameters: this new hash of the same password replaces
    /// it (made in the same slot as the check).
    YesRehashed(String),
}

/// Checks `password` against `stored`, or, for an unknown user (`None`), against a hash of
/// nothing, so a wrong username takes as long as a wrong password. A right password under
/// older parameters is hashed again. Slow, as [`hash`] is.
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
    if is_current(&parsed) {
        return Verified::Yes;
    }
    match hash(password) {
        Ok(rehashed) => Verified::YesRehashed(rehashed),
        // The password is right; the old hash stays until the next sign-in.
        Err(_) => Verified::Yes,
    }
}

/// Whether `parsed` was made under exactly the current algorithm, version and parameters (and
/// the default output length): only then is it left alone.
fn is_current(parsed: &PasswordHash) -> bool {
    let Ok(params) = Params::try_from(parsed) else {
        return false;
    };
    parsed.algorithm == Algorithm::Argon2id.ident()
        && parsed.version == Some(u32::from(Version::V0x13))
        && params.m_cost() == MEMORY_KIB
        && params.t_cost() == PASSES
        && params.p_cost() == LANES
        && params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN) == Params::DEFAULT_OUTPUT_LEN
        && params.keyid().is_empty()
        && params.data().is_empty()
}

/// Makes the hash [`verify`] checks unknown usernames against, so the first such sign-in does
/// not take twice as long as a wrong password (which would tell that the username is unknown).
/// Slow, as [`hash`] is: call it off the async threads, once at start.
pub fn prepare() {
    LazyLock::force(&UNKNOWN_USER);
    // A server that nobody signs in to need not hold 19 MiB from start: the first sign-in on
    // this thread takes the memory again, and keeps it from then on.
    MEMORY.with_borrow_mut(|memory| *memory = Vec::new());
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

/// Where password hashes run: at most a fixed number at once, each on one of as many threads
/// of its own. A request that cannot get a slot within the configured wait is turned away
/// ([`Busy`]) without hashing, so a flood of sign-ins costs bounded CPU and memory.
///
/// The threads are fixed, not Tokio's blocking pool, because of what each hash allocates: 19
/// MiB, freed when it ends, which the system allocator keeps for reuse in the arena of the
/// thread that freed it. Two slots spread over Rocket's hundreds of blocking threads left one
/// such block behind in each of dozens of arenas (680 MiB after a flood); on two threads of
/// their own they stay within two.
#[derive(Clone)]
pub struct HashSlots {
    slots: Arc<Semaphore>,
    threads: Arc<rayon::ThreadPool>,
    wait: Duration,
}

impl std::fmt::Debug for HashSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashSlots")
            .field("threads", &self.threads.current_num_threads())
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// No hashing slot came free in time: answer 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password-hashing slot is busy")]
pub struct Busy;

/// The hashing threads could not be started.
#[derive(Debug, thiserror::Error)]
#[error("could not start the password-hashing threads: {0}")]
pub struct ThreadsError(#[from] rayon::ThreadPoolBuildError);

impl HashSlots {
    /// `slots` hashes at once, on as many threads; a request waits at most `wait` for one.
    ///
    /// # Errors
    ///
    /// [`ThreadsError`] when the threads cannot be started.
    pub fn new(slots: usize, wait: Duration) -> Result<Self, ThreadsError> {
        let slots = slots.max(1);
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(slots)
            .thread_name(|index| format!("password-hash-{index}"))
            .build()?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(slots)),
            threads: Arc::new(threads),
            wait,
        })
    }

    /// Runs `job` (a hash or a check) in a slot, on a hashing thread. The slot is held until
    /// `job` returns, even if the request that asked is dropped meanwhile.
    ///
    /// # Errors
    ///
    /// [`Busy`] when no slot came free within the wait; `job` did not run then.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let slot = rocket::tokio::time::timeout(self.wait, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let (done, result) = rocket::tokio::sync::oneshot::channel();
        self.threads.spawn(move || {
            // Nobody may be waiting any more; the slot is freed either way.
            let _ = done.send(job());
            drop(slot);
        });
        result.await.map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_current_hash_is_kept_and_an_older_one_replaced() {
        let current = hash("correct horse battery").expect("a hash");
        let old_params = Params::new(8 * 1024, 1, 1, None).expect("parameters");
        let mut salt = [0u8; 16];
        rand::fill(&mut salt);
        let older = Argon2::new(Algorithm::Argon2id, Version::V0x13, old_params)
            .hash_password_with_salt(b"correct horse battery", &salt)
            .expect("an older hash")
            .to_string();

        assert_eq!(
            verify("correct horse battery", Some(&current)),
            Verified::Yes
        );
        assert_eq!(verify("wrong horse battery", Some(&current)), Verified::No);
        let Verified::YesRehashed(rehashed) = verify("correct horse battery", Some(&older)) else {
            panic!("an older hash is replaced");
        };
        assert_eq!(
            verify("correct horse battery", Some(&rehashed)),
            Verified::Yes
        );
        assert_eq!(verify("correct horse battery", None), Verified::No);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_finds_every_slot_busy_is_turned_away_without_running() {
        let slots = HashSlots::new(1, Duration::from_millis(50)).expect("a thread");
        let (started, wait) = std::sync::mpsc::channel();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let holder = {
            let slots = slots.clone();
            tokio::spawn(async move {
                slots
                    .run(move || {
                        let _ = started.send(());
                        let _ = hold.recv();
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || wait.recv())
            .await
            .expect("a blocking task")
            .expect("the first job runs");

        let turned_away = slots.run(|| "ran").await;

        assert_eq!(turned_away, Err(Busy));
        release.send(()).expect("release the first job");
        assert_eq!(holder.await.expect("the holder"), Ok(()));
        assert_eq!(slots.run(|| "ran").await, Ok("ran"));
    }
}
