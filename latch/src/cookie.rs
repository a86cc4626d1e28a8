//! Private cookies: sealing with the current `secret_key`, and opening with it or, during a key
//! rotation, with one of the `previous_secret_keys`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rocket::figment::Figment;
use rocket::http::private::cookie::{CookieJar as RawJar, Expiration, Key};
use rocket::http::{Cookie, CookieJar, SameSite};

use super::ConfigError;

/// Keys that sealed cookies before the current `secret_key`: cookies they sealed are still
/// opened (and resealed with the current key); nothing is ever sealed with them.
#[derive(Clone, Default)]
pub struct PreviousKeys(Vec<Key>);

impl std::fmt::Debug for PreviousKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PreviousKeys(<{} redacted>)", self.0.len())
    }
}

impl PreviousKeys {
    /// The `previous_secret_keys` at the top of `figment` (latch's table, or wherever an app
    /// keeps them): a list of base64 keys, each of 32 or 64 bytes, read the way Rocket reads
    /// `secret_key`. Absent, the list is empty.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for a value that is not a list of such keys (the keys are never shown).
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        const KEY: &str = "previous_secret_keys";
        let encoded: Vec<String> = match figment.extract_inner(KEY) {
            Ok(keys) => keys,
            Err(error) if error.missing() && !figment.contains(KEY) => return Ok(Self::default()),
            Err(error) => return Err(ConfigError::from_figment(&error)),
        };
        let keys = encoded
            .iter()
            .enumerate()
            .map(|(index, key)| {
                let bytes = STANDARD.decode(key.trim()).ok().filter(|b| b.len() >= 32);
                match bytes {
                    // Rocket's rule: 64 bytes or more are a master key, fewer are key material.
                    Some(bytes) if bytes.len() >= 64 => Ok(Key::from(&bytes)),
                    Some(bytes) => Ok(Key::derive_from(&bytes)),
                    None => Err(ConfigError::new(
                        KEY,
                        format!(
                            "entry {index} is not a base64 key of 32 or 64 bytes \
                             (make one with `openssl rand -base64 32`)"
                        ),
                    )),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(keys))
    }

    /// Keys for tests and apps that build [`SessionManager`](crate::SessionManager) by hand.
    pub fn new(keys: Vec<Key>) -> Self {
        Self(keys)
    }
}

/// How a private cookie was opened.
pub(crate) enum Opened {
    /// With the current key.
    Current(Cookie<'static>),
    /// With a previous key: the caller should reseal it with the current one.
    Previous(Cookie<'static>),
    /// The cookie is there but no key opens it (tampered, or sealed with a dropped key).
    Unreadable,
    Absent,
}

/// Opens the private cookie `name` with the current key, then with each previous one.
pub(crate) fn open(cookies: &CookieJar<'_>, name: &str, previous: &PreviousKeys) -> Opened {
    if let Some(cookie) = cookies.get_private(name) {
        return Opened::Current(cookie);
    }
    let Some(raw) = cookies.get(name) else {
        return Opened::Absent;
    };
    for key in &previous.0 {
        let mut jar = RawJar::new();
        jar.add_original(raw.clone());
        if let Some(cookie) = jar.private(key).get(name) {
            return Opened::Previous(cookie);
        }
    }
    Opened::Unreadable
}

/// Seals `value` in the private cookie `name` with latch's attributes: `HttpOnly`,
/// `SameSite=Lax`, `Path=/`, `Secure` when configured, and a lifetime of `max_age` (a browser
/// session cookie when `None`).
pub(crate) fn seal(
    cookies: &CookieJar<'_>,
    name: &str,
    value: String,
    secure: bool,
    max_age: Option<time::Duration>,
) {
    let mut cookie = Cookie::build((name.to_owned(), value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure);
    cookie = match max_age {
        Some(max_age) => {
            let (max_age, expires) = lifetime(time::OffsetDateTime::now_utc(), max_age);
            cookie.max_age(max_age).expires(expires)
        }
        // Said outright: Rocket gives a private cookie without an expiry one of a week.
        None => cookie.expires(Expiration::Session),
    };
    cookies.add_private(cookie);
}

/// `Max-Age` and `Expires` for a cookie that should last `max_age` from `now`. Both count whole
/// seconds, so both round up: the cookie never ends before the session does (the server ends
/// sessions; a cookie that outlives one by under a second is removed on its next request).
fn lifetime(
    now: time::OffsetDateTime,
    max_age: time::Duration,
) -> (time::Duration, time::OffsetDateTime) {
    let seconds = max_age.whole_seconds() + i64::from(max_age.subsec_nanoseconds() > 0);
    let ends = now + max_age;
    let expires = ends
        .replace_nanosecond(0)
        .map_or(ends, |whole| whole + time::Duration::seconds(1));
    (time::Duration::seconds(seconds), expires)
}

/// Tells the browser to drop the cookie `name`.
pub(crate) fn remove(cookies: &CookieJar<'_>, name: &str) {
    cookies.remove_private(Cookie::build(name.to_owned()).path("/"));
}

#[cfg(test)]
mod tests {
    use time::{Duration, OffsetDateTime};

    use super::*;

    #[test]
    fn a_cookie_never_ends_before_its_session() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a time")
            + Duration::milliseconds(999);
        for millis in [1, 999, 1000, 1001, 1500, 3_600_000] {
            let max_age = Duration::milliseconds(millis);
            let (seconds, expires) = lifetime(now, max_age);
            assert_eq!(expires.nanosecond(), 0, "HTTP dates have whole seconds");
            assert!(expires >= now + max_age, "{millis} ms: Expires too early");
            assert!(seconds >= max_age, "{millis} ms: Max-Age too short");
            assert!(
                seconds - max_age < Duration::SECOND,
                "{millis} ms: rounded too far"
            );
        }
    }
}
