//! Times as the walkthrough keeps and shows them: Unix milliseconds, the unit of its accounts
//! tables and of the countdowns its pages run (`static/countdown.js`).

use time::OffsetDateTime;

/// `time` as Unix milliseconds (saturating far outside any session's lifetime).
pub fn unix_ms(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The current time as Unix milliseconds.
pub fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}
