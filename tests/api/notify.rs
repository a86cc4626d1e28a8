//! The Postgres trigger that tells other instances which sessions changed
//! (`migrations/postgres`): every changed live session named, updates a hundred per notification.

use std::collections::BTreeSet;
use std::time::Duration;

use latch::Table;
use sqlx::postgres::PgListener;

use crate::helpers::{SessionRow, TestDb};

const LIVE: usize = 250;
const EXPIRED: usize = 10;

#[tokio::test]
async fn a_statement_announces_every_live_session_it_changed_updates_a_hundred_at_a_time() {
    // Hashes of the numbers 1..=260; the last ten rows expired long ago.
    let deadline = format!("case when i <= {LIVE} then 9000000000000 else 1 end");
    let Some((db, pool)) = TestDb::seeded_postgres((LIVE + EXPIRED) as i64, &deadline).await else {
        return;
    };
    let live: BTreeSet<String> = db
        .rows()
        .await
        .iter()
        .filter(|row| row.expires_at > 1)
        .map(SessionRow::hex_hash)
        .collect();
    let mut listener = PgListener::connect_with(&pool).await.expect("listener");
    listener
        .listen(&Table::default().channel())
        .await
        .expect("listen");
    let mut other = pool.acquire().await.expect("connection");
    sqlx::query("set application_name = 'latch-other'")
        .execute(&mut *other)
        .await
        .expect("name the connection");

    sqlx::query("update sessions set version = version + 1")
        .execute(&mut *other)
        .await
        .expect("update every row");
    let updated = receive(&mut listener).await;
    sqlx::query("delete from sessions")
        .execute(&mut *other)
        .await
        .expect("delete every row");
    let deleted = receive(&mut listener).await;

    // Updates come a hundred to a notification; deletes (a few logouts at a time, while the
    // purge's thousands of expired rows are skipped row by row) one each.
    for (what, payloads, expected) in [("update", updated, 3), ("delete", deleted, LIVE)] {
        assert_eq!(payloads.len(), expected, "{what}: notifications");
        let mut named = BTreeSet::new();
        for payload in &payloads {
            assert!(payload.len() < 8000, "{what}: under the payload limit");
            let (from, list) = payload.split_once(' ').expect("sender, then IDs");
            assert_eq!(from, "latch-other", "{what}: names the sender");
            named.extend(list.split(',').map(str::to_owned));
        }
        assert_eq!(named, live, "{what}: every live session, no expired one");
    }
}

/// The notifications of one statement: all that arrive until none has come for a moment.
async fn receive(listener: &mut PgListener) -> Vec<String> {
    let mut payloads = Vec::new();
    while let Ok(received) = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await
    {
        payloads.push(received.expect("notification").payload().to_owned());
    }
    payloads
}
