//! The session inspector, `GET /session`: the requester's own session as the browser holds it
//! (the cookie), as the server opened it (the ID) and as it is stored (the row). Every secret is
//! cut short: the cookie and the ID are bearer credentials, and a page can be screenshotted.

use latch::{CsrfToken, Inspection, Session, SessionManager};
use rocket::http::{Cookie, CookieJar};
use rocket::{Route, State, get, routes};
use serde_json::{Value, json};

use super::keys::ACCOUNT_NAME;
use crate::clock::unix_ms;
use crate::error::AppError;
use crate::templates::Page;

/// Characters of the encrypted cookie value shown: the start of its random nonce, which tells
/// one cookie from another and nothing more.
const COOKIE_PREFIX_CHARS: usize = 6;

pub fn routes() -> Vec<Route> {
    routes![inspect]
}

/// Shows this browser's session, or says it has none. Reads only: it never creates a session,
/// so a visitor without one gets no cookie and no row.
#[get("/session")]
async fn inspect(
    session: Session<'_>,
    csrf: CsrfToken<'_>,
    cookies: &CookieJar<'_>,
    manager: &State<SessionManager>,
) -> Result<Page, AppError> {
    let inspection = session.inspect().await?;
    let account = session.get(&ACCOUNT_NAME).await?;
    let config = manager.config();
    let now = crate::clock::now_ms();
    // `get` is the cookie as the browser sent it, still sealed.
    let sent = cookies.get(&config.cookie_name).map(as_stored);
    let prefix = sent
        .as_deref()
        .map(|value| value.chars().take(COOKIE_PREFIX_CHARS).collect::<String>());
    Ok(Page::render(
        "session",
        json!({
            "now": now,
            "cookie": {
                "name": config.cookie_name,
                "sent": sent.is_some(),
                "length": sent.as_deref().map_or(0, |value| value.chars().count()),
                "prefix": prefix,
                "secure": config.cookie_secure,
            },
            "session": inspection.map(|inspection| stored(inspection, now)),
            "idle_timeout": span_ms(seconds_to_ms(config.idle_timeout)),
            "absolute_timeout": span_ms(seconds_to_ms(config.absolute_timeout)),
            "account": account,
            "session_csrf": csrf.for_session(),
        }),
    ))
}

/// A cookie's value as the browser stores it. Rocket percent-encodes the value in `Set-Cookie`
/// (base64's `/` and `=`) and decodes it on the way in: encode it again, name and value alone
/// (a cookie from Rocket's test client also carries its attributes), to show it as the
/// browser's developer tools do.
fn as_stored(cookie: &Cookie<'_>) -> String {
    let bare = Cookie::new(cookie.name().to_owned(), cookie.value().to_owned());
    let pair = bare.encoded().to_string();
    pair.split_once('=')
        .map_or_else(String::new, |(_, value)| value.to_owned())
}

/// The server's side of the page. The data goes out as text for the template to escape: it is
/// whatever the visitor typed.
fn stored(inspection: Inspection, now: i64) -> Value {
    let record = inspection.record;
    let user = record.user.as_ref().map(|user| {
        json!({
            "id": user.user_id,
            "signed_in": moment(unix_ms(user.signed_in_at), now),
            "last_seen": inspection.last_seen.map(|at| moment(unix_ms(at), now)),
            "browser": user.client.user_agent,
            "address": user.client.address,
        })
    });
    json!({
        "user": user,
        "id_prefix": inspection.id_prefix,
        "hash_prefix": inspection.hash_prefix,
        "version": record.version,
        "created": moment(unix_ms(record.created_at), now),
        "idle_deadline": moment(unix_ms(record.expires_at), now),
        "absolute_deadline": moment(unix_ms(inspection.absolute_deadline), now),
        // `{:#}` pretty-prints, and cannot fail as `to_string_pretty` in principle can.
        "data": format!("{:#}", Value::Object(record.data)),
    })
}

/// A time as the page shows it: Unix ms (for `countdown.js`), a UTC date, and how far from now.
fn moment(at: i64, now: i64) -> Value {
    let delta = at.saturating_sub(now);
    let relative = if delta >= 0 {
        format!("in {}", span_ms(delta.unsigned_abs()))
    } else {
        format!("{} ago", span_ms(delta.unsigned_abs()))
    };
    json!({ "ms": at, "utc": utc(at), "iso": iso(at), "relative": relative })
}

/// A duration in its two largest units, as `static/countdown.js` writes it too: "29 min 40 s".
fn span_ms(ms: u64) -> String {
    let seconds = ms / 1000;
    let (days, hours, minutes) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    let seconds = seconds % 60;
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {minutes} min")
    } else if minutes > 0 {
        format!("{minutes} min {seconds} s")
    } else {
        format!("{seconds} s")
    }
}

fn seconds_to_ms(seconds: u64) -> u64 {
    seconds.saturating_mul(1000)
}

fn datetime(ms: i64) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()
}

/// `2025-06-01 14:03:07 UTC`.
fn utc(ms: i64) -> String {
    datetime(ms).map_or_else(
        || format!("{ms} ms"),
        |t| {
            let (date, h, m, s) = (t.date(), t.hour(), t.minute(), t.second());
            format!("{date} {h:02}:{m:02}:{s:02} UTC")
        },
    )
}

/// `2025-06-01T14:03:07Z`, for `<time datetime>`.
fn iso(ms: i64) -> String {
    datetime(ms).map_or_else(String::new, |t| {
        let (date, h, m, s) = (t.date(), t.hour(), t.minute(), t.second());
        format!("{date}T{h:02}:{m:02}:{s:02}Z")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_two_largest_units() {
        assert_eq!(span_ms(999), "0 s");
        assert_eq!(span_ms(59_999), "59 s");
        assert_eq!(span_ms(1_780_000), "29 min 40 s");
        assert_eq!(span_ms(3_600_000), "1 h 0 min");
        assert_eq!(span_ms(86_400_000 + 7_200_000), "1 d 2 h");
    }

    #[test]
    fn moments_say_how_far_from_now_and_when_in_utc() {
        let now = 1_750_000_000_000;
        let later = moment(now + 1_780_000, now);
        let earlier = moment(now - 20_000, now);

        assert_eq!(later["relative"], "in 29 min 40 s");
        assert_eq!(earlier["relative"], "20 s ago");
        assert_eq!(later["utc"], "2025-06-15 15:36:20 UTC");
        assert_eq!(later["iso"], "2025-06-15T15:36:20Z");
    }
}
