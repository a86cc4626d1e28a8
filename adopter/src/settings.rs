//! The shop's own settings, at the top level of Rocket's figment where an app keeps them:
//! `database_url` and a `[session]` table. latch would use the same names if it read the top
//! level; it reads only its `latch` table, so the two never meet.
//!
//! ```toml
//! [default]
//! database_url = "mysql://shop@db/shop"   # the shop's, not latch's
//!
//! [default.session]                        # the shop's, not latch's
//! backend = "redis"
//! ttl = 5
//!
//! [default.latch]                          # latch's
//! database_url = "sqlite://data/sessions.db"
//! ```

use rocket::fairing::AdHoc;
use serde::Deserialize;

/// Every setting of the shop's own, read once at ignition and kept in Rocket's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ShopSettings {
    /// The shop's own database (its orders), if it names one.
    #[serde(default)]
    pub database_url: Option<String>,
    /// The shop's own session settings: those of the session system it used before latch,
    /// still in its configuration while it moves over.
    #[serde(default)]
    pub session: ShopSession,
}

/// The shop's `[session]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ShopSession {
    /// Where its old sessions lived.
    pub backend: String,
    /// How long they lasted, in minutes.
    pub ttl: u64,
}

impl Default for ShopSession {
    fn default() -> Self {
        Self {
            backend: "memory".to_owned(),
            ttl: 30,
        }
    }
}

/// Reads [`ShopSettings`] from the figment at ignition and manages them; a setting of the
/// wrong type stops the launch, naming it.
pub fn stage() -> AdHoc {
    AdHoc::config::<ShopSettings>()
}
