//! The walkthrough pages: counter, set / view / destroy, login, names, escaping, error pages.

use rocket::http::Status;
use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_status, backend_tests, read, set_cookies};

backend_tests!(
    the_counter_welcomes_then_counts_visits,
    a_stored_name_is_shown_on_the_user_page,
    the_user_page_without_a_session_says_logged_out,
    logout_deletes_the_row_and_removes_the_cookie,
    login_stores_the_name_rotates_the_id_and_greets,
    an_invalid_login_is_refused_and_stores_nothing,
    bad_names_get_a_422_page_and_store_nothing,
    a_64_character_name_is_accepted,
    user_text_is_escaped,
    unknown_pages_get_the_404_page,
);

async fn the_counter_welcomes_then_counts_visits(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let first = read(app.get("/").await).await;
    let second = read(app.get("/").await).await;
    let third = read(app.get("/").await).await;

    assert_status(&first, Status::Ok);
    assert!(first.1.contains("Welcome to this page for the first time!"));
    assert!(
        second.1.contains("You visited this page 2 times"),
        "{}",
        second.1
    );
    assert!(third.1.contains("You visited this page 3 times"));
    let row = app
        .current_row()
        .await
        .expect("the counter's session is stored");
    assert_eq!(row.data, json!({ "page_views": 3 }));
}

async fn a_stored_name_is_shown_on_the_user_page(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let set = read(app.get("/user/Ada").await).await;
    let view = read(app.get("/user").await).await;

    assert_status(&set, Status::Ok);
    assert!(set.1.contains("<strong>Ada</strong>"));
    assert!(set.1.contains(r#"href="&#x2F;user""#) || set.1.contains(r#"href="/user""#));
    assert_status(&view, Status::Ok);
    assert!(view.1.contains("<h1>Ada</h1>"));
    assert!(view.1.contains("Logout"));
    let row = app.current_row().await.expect("stored");
    assert_eq!(row.data, json!({ "name": "Ada" }));
}

async fn the_user_page_without_a_session_says_logged_out(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let view = read(app.get("/user").await).await;

    assert_status(&view, Status::Ok);
    assert!(view.1.contains("user logged out!"));
}

async fn logout_deletes_the_row_and_removes_the_cookie(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.get("/user/Ada").await;
    let id = app.session_id().expect("a session cookie");
    assert!(app.row_for(&id).await.is_some());

    let response = app.logout().await;
    let removal = set_cookies(&response);
    let logout = read(response).await;
    let after = read(app.get("/user").await).await;

    assert_status(&logout, Status::Ok);
    assert!(logout.1.contains("logged out!"));
    assert!(logout.1.contains("Check session"));
    assert!(app.row_for(&id).await.is_none(), "the row is deleted");
    assert!(
        removal
            .iter()
            .any(|c| c.starts_with("session=;") && c.contains("Max-Age=0")),
        "the cookie is removed: {removal:?}"
    );
    assert!(app.raw_cookie().is_none());
    assert!(after.1.contains("user logged out!"));
    assert!(app.rows().await.is_empty());
}

async fn login_stores_the_name_rotates_the_id_and_greets(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let form = read(app.get("/login").await).await;
    assert!(form.1.contains(r#"name="username""#));
    app.get("/").await;
    let before = app.raw_cookie().expect("cookie before login");
    let id_before = app.session_id().expect("id before login");

    let response = app.post_form_with_token("/login", "username=Grace").await;
    let status = response.status();
    let location = response.headers().get_one("Location").map(str::to_owned);
    let greeting = read(app.get("/").await).await;

    assert_eq!(status, Status::SeeOther);
    assert_eq!(location.as_deref(), Some("/"));
    assert!(greeting.1.contains("Hello Grace"), "{}", greeting.1);
    assert!(
        greeting.1.contains("You visited this page 2 times"),
        "data kept"
    );
    let id_after = app.session_id().expect("id after login");
    assert_ne!(id_after, id_before, "the ID rotated");
    assert!(
        app.row_for(&id_before).await.is_none(),
        "no row under the old ID"
    );
    let old = read(app.get_with_cookie("/user", &before).await).await;
    assert!(old.1.contains("user logged out!"), "the old cookie is dead");
    assert_eq!(app.rows().await.len(), 1);
}

async fn an_invalid_login_is_refused_and_stores_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let long = "x".repeat(65);

    for body in [
        "username=",
        "",
        "other=1",
        &format!("username={long}"),
        "username=a%0Ab",
    ] {
        let page = read(app.post_form_with_token("/login", body).await).await;
        assert_status(&page, Status::UnprocessableEntity);
        assert!(
            page.1.contains(r#"class="notice error""#),
            "{body}: {}",
            page.1
        );
    }

    assert!(app.rows().await.is_empty());
    assert!(app.raw_cookie().is_none());
}

async fn bad_names_get_a_422_page_and_store_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let too_long = "n".repeat(65);
    let huge = "n".repeat(20_000);

    for (path, reason) in [
        (format!("/user/{too_long}"), "longer than 64 characters"),
        (format!("/user/{huge}"), "longer than 64 characters"),
        ("/user/a%0Ab".to_owned(), "control characters"),
        ("/user/nul%00".to_owned(), "control characters"),
    ] {
        let page = read(app.get(&path).await).await;
        assert_status(&page, Status::UnprocessableEntity);
        assert!(page.1.contains(reason), "{path}: {}", page.1);
    }
    let invalid = read(app.get("/user/%FF%FE").await).await;
    assert_status(&invalid, Status::UnprocessableEntity);
    assert!(invalid.1.contains("not valid UTF-8"));

    assert!(app.rows().await.is_empty());
    assert!(app.raw_cookie().is_none());
}

async fn a_64_character_name_is_accepted(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let name = "é".repeat(64);

    let page = read(app.get(&format!("/user/{}", "%C3%A9".repeat(64))).await).await;

    assert_status(&page, Status::Ok);
    assert_eq!(
        app.current_row().await.expect("stored").data,
        json!({ "name": name })
    );
}

async fn user_text_is_escaped(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let set = read(app.get("/user/%3Cscript%3Ealert(1)%3C%2Fscript%3E").await).await;
    let view = read(app.get("/user").await).await;
    let failed_login = read(
        app.post_form_with_token("/login", &format!("username=%3Cb%3E{}", "x".repeat(70)))
            .await,
    )
    .await;

    for page in [&set.1, &view.1, &failed_login.1] {
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<b>xxx"), "{page}");
    }
    assert!(view.1.contains("&lt;script&gt;alert(1)&lt;"));
}

async fn unknown_pages_get_the_404_page(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };

    let page = read(app.get("/no/such/page").await).await;

    assert_status(&page, Status::NotFound);
    assert!(page.1.contains("404"));
    assert!(page.1.contains("There is nothing at this address."));
    assert!(page.1.contains("<!doctype html>"));
}
