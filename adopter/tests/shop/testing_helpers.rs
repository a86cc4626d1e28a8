//! Testing a handler the easy way: `Latch::in_memory()` and Rocket's local client, then
//! `latch::testing::session` reads what the browser's session holds, user included.

use latch::Latch;
use latch_adopter::cart::CART;
use rocket::http::Status;
use rocket::local::asynchronous::Client;

use crate::helpers::{self, add, line, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_shows_the_cart_and_after_sign_in_its_user() {
    let rocket = latch_adopter::app(helpers::figment(), Latch::in_memory());
    let client = Client::tracked(rocket).await.expect("the shop launches");
    assert_eq!(client.get("/").dispatch().await.status(), Status::Ok);
    let before = latch::testing::session(&client)
        .await
        .expect("the store answers");
    assert_eq!(before, None, "reading the page stored nothing");

    assert_eq!(add(&client, "apple", 2).await, Status::SeeOther);
    assert_eq!(add(&client, "pear", 1).await, Status::SeeOther);
    let session = latch::testing::session(&client)
        .await
        .expect("the store answers")
        .expect("a session");
    assert_eq!(
        session.get(&CART).expect("a cart"),
        Some(vec![line("apple", 2), line("pear", 1)])
    );
    assert_eq!(session.user, None);

    assert_eq!(sign_in(&client, "ada").await, Status::SeeOther);
    let session = latch::testing::session(&client)
        .await
        .expect("the store answers")
        .expect("a session");
    let user = session.user.as_ref().expect("signed in");
    assert_eq!(user.user_id, "ada");
    assert_eq!(
        session.get(&CART).expect("a cart"),
        Some(vec![line("apple", 2), line("pear", 1)]),
        "signing in kept the cart"
    );
}
