//! Parallel requests on one session: no lost updates, and no resurrection after logout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::join_all;
use latch::Database;
use latch::time::OffsetDateTime;
use latch::{
    ExpiredDeletion, IdHash, Loaded, Record, Rekeyed, SessionId, SessionManager, SessionStore,
    StoreError, UserIndex,
};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use serde_json::json;

use crate::helpers::{Backend, COOKIE, TestApp, TestDb, backend_tests, read, test_figment};

backend_tests!(
    twenty_four_parallel_counter_hits_all_count,
    parallel_writes_to_different_keys_all_land,
    a_request_finishing_after_logout_does_not_bring_the_session_back,
    a_stale_cached_copy_is_written_from_but_never_shown,
);

async fn twenty_four_parallel_counter_hits_all_count(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/").await;
    let cookie = app.raw_cookie().expect("cookie");

    let hits = (0..24).map(|_| async { read(app.get_with_cookie("/", &cookie).await).await });
    let pages = join_all(hits).await;

    assert!(
        pages.iter().all(|(status, _)| *status == Status::Ok),
        "{pages:?}"
    );
    let row = app.current_row().await.expect("stored");
    assert_eq!(row.data, json!({ "page_views": 25 }));
    let last = read(app.get("/").await).await;
    assert!(last.1.contains("You visited this page 26 times"));
}

async fn parallel_writes_to_different_keys_all_land(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/").await;
    let cookie = app.raw_cookie().expect("cookie");

    let counter = (0..12).map(|_| async { read(app.get_with_cookie("/", &cookie).await).await });
    let names = (0..12).map(|i| {
        let cookie = cookie.clone();
        let app = &app;
        async move { read(app.get_with_cookie(&format!("/user/n{i}"), &cookie).await).await }
    });
    let (counted, named) = futures::join!(join_all(counter), join_all(names));

    assert!(
        counted
            .iter()
            .chain(&named)
            .all(|(status, _)| *status == Status::Ok)
    );
    let row = app.current_row().await.expect("stored");
    assert_eq!(
        row.data["page_views"],
        json!(13),
        "no counter update was lost"
    );
    assert!(
        row.data["name"]
            .as_str()
            .is_some_and(|n| n.starts_with('n'))
    );
}

async fn a_request_finishing_after_logout_does_not_bring_the_session_back(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    for _ in 0..5 {
        app.get("/").await;
        let id = app.session_id().expect("id");
        let cookie = app.raw_cookie().expect("cookie");

        let hits = (0..12).map(|_| async { read(app.get_with_cookie("/", &cookie).await).await });
        let logout = async { read(app.logout_with_cookie(&cookie).await).await };
        let (pages, logged_out) = futures::join!(join_all(hits), logout);

        assert_eq!(logged_out.0, Status::Ok);
        for (status, body) in &pages {
            assert!(
                *status == Status::Ok || *status == Status::Conflict,
                "{status}: {body}"
            );
        }
        assert!(
            app.row_for(&id).await.is_none(),
            "the destroyed session stays gone"
        );
        let after = read(app.get_with_cookie("/user", &cookie).await).await;
        assert!(after.1.contains("user logged out!"));
        // Start the next round as a fresh browser.
        app.logout().await;
    }
}

/// Plays a cache that has not yet heard of other instances' changes: `load_unconfirmed`
/// answers with the copy this instance last wrote, whatever the database holds now. The
/// inspector's tests use it too.
pub(crate) struct Unheard {
    inner: Arc<dyn SessionStore>,
    copies: Mutex<HashMap<IdHash, Record>>,
}

impl Unheard {
    pub(crate) fn new(inner: Arc<dyn SessionStore>) -> Self {
        Self {
            inner,
            copies: Mutex::default(),
        }
    }

    fn remember(&self, id: &IdHash, record: &Record) {
        self.copies
            .lock()
            .expect("not poisoned")
            .insert(*id, record.clone());
    }
}

#[latch::async_trait]
impl SessionStore for Unheard {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
        let created = self.inner.create(id, record).await?;
        self.remember(id, record);
        Ok(created)
    }
    async fn load(&self, id: &IdHash, now: OffsetDateTime) -> Result<Option<Record>, StoreError> {
        self.inner.load(id, now).await
    }
    async fn load_unconfirmed(
        &self,
        id: &IdHash,
        now: OffsetDateTime,
    ) -> Result<Option<Loaded>, StoreError> {
        let copy = self.copies.lock().expect("not poisoned").get(id).cloned();
        match copy {
            Some(record) => Ok(Some(Loaded {
                record,
                confirmed: false,
            })),
            None => self.inner.load_unconfirmed(id, now).await,
        }
    }
    async fn save(
        &self,
        id: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let saved = self.inner.save(id, record, now).await?;
        if saved {
            self.remember(id, record);
        }
        Ok(saved)
    }
    async fn touch(
        &self,
        id: &IdHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.inner.touch(id, expires_at, now).await
    }
    async fn rekey(
        &self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        self.inner.rekey(old, new, record, now).await
    }
    async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    fn user_index(&self) -> Option<&dyn UserIndex> {
        self.inner.user_index()
    }
    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        self.inner.expired_deletion()
    }
}

/// Another instance changes and then ends the session behind this instance's back: a write
/// from the stale copy re-reads and re-applies, a page shows only the current data, and a write
/// after the session ended starts a new one.
async fn a_stale_cached_copy_is_written_from_but_never_shown(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let config = latch_walkthrough::config::latch_config(&test_figment(db.url())).expect("config");
    let database = Database::connect(&config.database).await.expect("connect");
    let shared = database
        .session_store(&latch::Table::default(), &config.session)
        .await
        .expect("store");
    let store = Arc::new(Unheard::new(Arc::clone(&shared)));
    let rocket = rocket::custom(test_figment(db.url()))
        .manage(SessionManager::new(store, config.session))
        .attach(latch_walkthrough::templates::stage())
        .mount("/", latch_walkthrough::routes::pages());
    let client = Client::tracked(rocket).await.expect("launch");
    let session_id = || {
        let cookie = client
            .cookies()
            .get_private(COOKIE)
            .expect("a session cookie");
        SessionId::parse(cookie.value()).expect("a session ID")
    };
    client.get("/user/Ada").dispatch().await;
    let hash = session_id().hash();
    let elsewhere = |name: &str, views: u64| {
        let shared = Arc::clone(&shared);
        let name = name.to_owned();
        async move {
            let now = OffsetDateTime::now_utc();
            let current = shared.load(&hash, now).await.expect("load").expect("live");
            let mut next = current.clone();
            next.data = json!({ "name": name, "page_views": views })
                .as_object()
                .cloned()
                .expect("an object");
            next.version += 1;
            assert!(shared.save(&hash, &next, now).await.expect("save"));
        }
    };

    elsewhere("Ada", 5).await;
    let counted = read(client.get("/").dispatch().await).await;
    elsewhere("Grace", 6).await;
    let shown = read(client.get("/user").dispatch().await).await;
    shared.delete(&hash).await.expect("delete");
    // The write finds the session logged out under it: 409, and the cookie goes ...
    let after_logout = read(client.get("/user/Linus").dispatch().await).await;
    // ... so the next request starts a fresh session.
    let again = read(client.get("/user/Linus").dispatch().await).await;

    assert!(
        counted.1.contains("visited this page 6 times"),
        "the write re-read the session: {}",
        counted.1
    );
    assert!(
        shown.1.contains("<h1>Grace</h1>"),
        "the page shows the current name, not the cached one: {}",
        shown.1
    );
    assert_eq!(after_logout.0, Status::Conflict, "{}", after_logout.1);
    assert_eq!(again.0, Status::Ok, "{}", again.1);
    let fresh = session_id().hash();
    assert_ne!(fresh, hash, "a new session");
    let stored = shared
        .load(&fresh, OffsetDateTime::now_utc())
        .await
        .expect("load");
    assert_eq!(stored.expect("stored").data["name"], "Linus");
    assert_eq!(
        shared
            .load(&hash, OffsetDateTime::now_utc())
            .await
            .expect("load"),
        None
    );
    client.terminate().await;
}
