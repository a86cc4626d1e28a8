//! The `secret_key` that seals session cookies: required in release, and kept across restarts in
//! development so `cargo run` does not log everyone out each time.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rocket::config::SecretKey;
use rocket::fairing::AdHoc;
use rocket::figment::Figment;

/// Where the development key lives (git-ignored, like the rest of `data/`).
pub const DEV_KEY_FILE: &str = "data/secret_key";

/// Why no usable secret key could be found.
#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    #[error(
        "no `secret_key` is configured, and session cookies need one that survives restarts: \
         generate one with `openssl rand -base64 32` and pass it as ROCKET_SECRET_KEY"
    )]
    Missing,
    #[error("could not read or create the development key {DEV_KEY_FILE}: {0}")]
    DevKey(#[source] io::Error),
}

/// Without a configured `secret_key`, Rocket's debug profile would make a new random key at every
/// start and orphan every cookie. In the debug profile this returns `figment` with the key kept
/// in [`DEV_KEY_FILE`] (created, mode 0600, on first run); in any other profile it refuses.
/// `None` when a key is configured and `figment` needs no change.
///
/// # Errors
///
/// [`SecretKeyError`]: no key outside debug, or the development key file is unusable.
pub fn resolve(figment: &Figment) -> Result<Option<Figment>, SecretKeyError> {
    // Rocket's own defaults hold an all-zero placeholder key; anything else, valid or not,
    // was configured (and an invalid one is Rocket's to report).
    match figment.extract_inner::<SecretKey>("secret_key") {
        Ok(key) if !key.is_provided() => {}
        _ => return Ok(None),
    }
    if figment.profile() != rocket::Config::DEBUG_PROFILE {
        return Err(SecretKeyError::Missing);
    }
    let key = load_or_create(Path::new(DEV_KEY_FILE)).map_err(SecretKeyError::DevKey)?;
    log::info!("using the development secret key in {DEV_KEY_FILE}");
    Ok(Some(figment.clone().merge(("secret_key", key))))
}

/// [`resolve`] as a stage, for apps built with [`crate::rocket`] and launched by Rocket.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Secret key", |rocket| async {
        match resolve(rocket.figment()) {
            Ok(None) => Ok(rocket),
            Ok(Some(figment)) => Ok(rocket.configure(figment)),
            Err(error) => {
                log::error!("{error}");
                Err(rocket)
            }
        }
    })
}

/// Reads the base64 key in `path`, or writes a new 256-bit one there, readable by its owner only.
fn load_or_create(path: &Path) -> io::Result<String> {
    match fs::read_to_string(path) {
        Ok(key) => return Ok(key.trim().to_owned()),
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let key = STANDARD.encode(bytes);
    // create_new: if another process won a race to create it, use theirs.
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(key.as_bytes())?;
            file.sync_all()?;
            Ok(key)
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            Ok(fs::read_to_string(path)?.trim().to_owned())
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_key_is_created_once_with_owner_only_permissions_and_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("data").join("secret_key");

        let first = load_or_create(&path).expect("create");
        let second = load_or_create(&path).expect("reload");

        assert_eq!(first, second);
        assert_eq!(STANDARD.decode(&first).expect("base64").len(), 32);
        let mode = fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
