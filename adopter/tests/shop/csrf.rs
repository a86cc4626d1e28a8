//! The cart's form from the outside: a post without the token, or with another browser's, is
//! 403 and changes nothing; with the token from the shop's own page it is added.

use std::sync::Arc;

use latch::{Latch, MemoryStore};
use latch_adopter::cart::{CART, CartLine};
use rocket::http::Status;
use rocket::local::asynchronous::Client;

use crate::helpers::{self, add, line, page_token, post_form};

/// A browser of the shop, with sessions in `store` (shared by every instance of one test).
async fn browser(store: &Arc<MemoryStore>) -> Client {
    let rocket = latch_adopter::app(helpers::figment(), Latch::with_store(Arc::clone(store)));
    Client::tracked(rocket).await.expect("the shop launches")
}

/// The cart in `client`'s session, read from the store; `None` without a session.
async fn stored_cart(client: &Client) -> Option<Vec<CartLine>> {
    let session = latch::testing::session(client)
        .await
        .expect("the store answers")?;
    Some(session.get(&CART).expect("a cart").unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_the_token_from_the_shops_page_is_added() {
    let client = browser(&Arc::default()).await;
    let token = page_token(&client).await;

    let response = post_form(
        &client,
        "/cart",
        format!("item=apple&quantity=2&csrf_token={token}"),
    )
    .await;

    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(stored_cart(&client).await, Some(vec![line("apple", 2)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_token_is_403_and_changes_nothing() {
    let store = Arc::default();
    let newcomer = browser(&store).await;
    let shopper = browser(&store).await;
    assert_eq!(add(&shopper, "apple", 1).await, Status::SeeOther);

    for client in [&newcomer, &shopper] {
        let response = post_form(client, "/cart", "item=pear&quantity=1".to_owned()).await;
        assert_eq!(response.status(), Status::Forbidden);
    }

    assert_eq!(stored_cart(&newcomer).await, None, "no session was started");
    assert_eq!(stored_cart(&shopper).await, Some(vec![line("apple", 1)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_another_browsers_token_is_403_and_changes_nothing() {
    let store = Arc::default();
    let (shopper, other) = (browser(&store).await, browser(&store).await);
    assert_eq!(add(&shopper, "apple", 1).await, Status::SeeOther);
    assert_eq!(add(&other, "plum", 1).await, Status::SeeOther);
    let others_token = page_token(&other).await;

    let response = post_form(
        &shopper,
        "/cart",
        format!("item=pear&quantity=1&csrf_token={others_token}"),
    )
    .await;

    assert_eq!(response.status(), Status::Forbidden);
    assert_eq!(stored_cart(&shopper).await, Some(vec![line("apple", 1)]));
    assert_eq!(stored_cart(&other).await, Some(vec![line("plum", 1)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_read_before_the_cart_began_has_a_token_that_stops_working_when_it_begins() {
    let client = browser(&Arc::default()).await;
    // Two tabs open on the page before anything is in the cart: both get the cookie token.
    let first_tab = page_token(&client).await;
    let second_tab = page_token(&client).await;
    assert_eq!(first_tab, second_tab);

    let first = format!("item=apple&quantity=1&csrf_token={first_tab}");
    assert_eq!(
        post_form(&client, "/cart", first).await.status(),
        Status::SeeOther
    );
    // The first add started a session; from now on only its token passes.
    let second = format!("item=pear&quantity=1&csrf_token={second_tab}");
    assert_eq!(
        post_form(&client, "/cart", second).await.status(),
        Status::Forbidden
    );

    assert_eq!(stored_cart(&client).await, Some(vec![line("apple", 1)]));
}
