//! Flash messages kept in the session on the server: set by one request, shown by the next
//! page, then gone. Unlike a flash cookie, the browser never holds the text.

use latch::{Key, Session, SessionError};
use serde::{Deserialize, Serialize};

/// The messages waiting to be shown.
const FLASH: Key<Vec<Flash>> = Key::new("flash");

/// One message, and whether it reports success or a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    pub kind: Kind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Success,
    Error,
}

/// Queues `text` for the next page this session sees.
///
/// # Errors
///
/// The session's error (the message is then not stored).
pub async fn push(
    session: &Session<'_>,
    kind: Kind,
    text: impl Into<String>,
) -> Result<(), SessionError> {
    let flash = Flash {
        kind,
        text: text.into(),
    };
    session
        .update(&FLASH, |queued| {
            let mut queued = queued.unwrap_or_default();
            queued.push(flash.clone());
            queued
        })
        .await
        .map(drop)
}

/// The messages waiting, removed from the session so they show once: the key goes with the
/// last of them, so a session that showed its messages keeps no empty `flash`. Costs a write
/// only when there is something to show; a message queued meanwhile by another request stays
/// for the next page.
///
/// # Errors
///
/// The session's error.
pub async fn take(session: &Session<'_>) -> Result<Vec<Flash>, SessionError> {
    let queued = session.get(&FLASH).await?.unwrap_or_default();
    if !queued.is_empty() {
        let shown = queued.len();
        session
            .edit(|data| {
                let current = data.get(&FLASH)?.unwrap_or_default();
                let waiting: Vec<Flash> = current.into_iter().skip(shown).collect();
                if waiting.is_empty() {
                    data.remove(&FLASH);
                    Ok(())
                } else {
                    data.insert(&FLASH, &waiting)
                }
            })
            .await?;
    }
    Ok(queued)
}
