//! A store of the shop's own (`ShopStore`: a map behind a mutex) passes latch's exported
//! contract with one call, the contract catches a broken variant of it, and the shop runs on
//! it: the cart works, and a sign-in (which needs a per-user index it lacks) is a 500 that
//! breaks nothing.

use latch::time::OffsetDateTime;
use latch::{ExpiredDeletion, IdHash, Latch, Record, Rekeyed, SessionStore, StoreError};
use latch_adopter::store::ShopStore;
use rocket::http::Status;
use rocket::local::asynchronous::Client;

use crate::helpers::{self, add, cart, line, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shops_store_passes_latchs_contract_without_a_user_index() {
    let checked = latch::testing::contract::check(|| async { ShopStore::default() }).await;

    assert!(checked.expired_deletion, "the purge's checks ran");
    assert!(
        !checked.user_index,
        "no per-user index, so none of its checks"
    );
    assert!(checked.checks > 0);
}

/// `ShopStore` with one bug: its `load` serves sessions whatever their deadline (it asks the
/// store as if it were 1970).
#[derive(Default)]
struct ServesExpired(ShopStore);

#[latch::async_trait]
impl SessionStore for ServesExpired {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, StoreError> {
        self.0.create(id, record).await
    }

    async fn load(&self, id: &IdHash, _now: OffsetDateTime) -> Result<Option<Record>, StoreError> {
        self.0.load(id, OffsetDateTime::UNIX_EPOCH).await
    }

    async fn save(
        &self,
        id: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.0.save(id, record, now).await
    }

    async fn touch(
        &self,
        id: &IdHash,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.0.touch(id, expires_at, now).await
    }

    async fn rekey(
        &self,
        old: &IdHash,
        new: &IdHash,
        record: &Record,
        now: OffsetDateTime,
    ) -> Result<Rekeyed, StoreError> {
        self.0.rekey(old, new, record, now).await
    }

    async fn delete(&self, id: &IdHash) -> Result<(), StoreError> {
        self.0.delete(id).await
    }

    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        self.0.expired_deletion()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "an_expired_session_is_no_session")]
async fn the_contract_catches_a_store_that_serves_expired_sessions() {
    let _never = latch::testing::contract::check(|| async { ServesExpired::default() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_runs_on_its_own_store_and_a_sign_in_there_is_a_500_that_breaks_nothing() {
    let rocket = latch_adopter::app(helpers::figment(), Latch::with_store(ShopStore::default()));
    let client = Client::tracked(rocket).await.expect("the shop launches");

    assert_eq!(add(&client, "apple", 2).await, Status::SeeOther);
    assert_eq!(cart(&client).await, vec![line("apple", 2)]);

    assert_eq!(
        sign_in(&client, "ada").await,
        Status::InternalServerError,
        "the store keeps no per-user index"
    );

    // The shopper's session is as it was, and the shop carries on.
    assert_eq!(cart(&client).await, vec![line("apple", 2)]);
    assert_eq!(add(&client, "pear", 1).await, Status::SeeOther);
    assert_eq!(cart(&client).await, vec![line("apple", 2), line("pear", 1)]);
    let page = client.get("/").dispatch().await;
    assert_eq!(page.status(), Status::Ok);
    let page = page.into_string().await.expect("a page");
    assert!(!page.contains("Signed in as"), "nobody is signed in");
}
