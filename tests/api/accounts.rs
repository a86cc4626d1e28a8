//! The "Real accounts" step: registration, password sign-in (throttled), the device list with
//! remote sign-out, password change, flash messages, and CSRF on every form.

use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, backend_tests, csrf_token_in, read};

backend_tests!(
    register_sign_out_and_sign_in_again,
    a_flash_message_shows_once,
    a_shown_flash_message_leaves_no_flash_key_in_the_session,
    wrong_password_and_unknown_user_get_the_same_answer,
    failed_sign_ins_are_throttled_per_username_with_retry_after,
    failed_sign_ins_are_throttled_per_address_and_forged_headers_do_not_help,
    sign_in_rotates_the_id_and_the_old_one_is_dead,
    the_device_list_shows_both_browsers_and_one_signs_out_the_other,
    the_device_list_names_each_browser_with_its_user_agent_on_hover,
    signing_out_everywhere_else_keeps_only_this_device,
    a_password_change_needs_the_current_one_and_ends_the_other_sessions,
    usernames_are_unique_whatever_their_case_and_passwords_have_rules,
    every_account_form_needs_the_csrf_token,
    signed_out_the_account_pages_send_you_to_sign_in,
    signed_out_the_account_forms_check_their_token_then_send_you_to_sign_in,
    the_inspector_shows_who_a_session_belongs_to,
    a_hash_made_under_older_parameters_is_replaced_at_sign_in,
    a_configured_ip_header_names_the_client_address,
    registrations_are_limited_per_address,
    sign_in_input_no_account_could_have_is_a_counted_401,
    strangers_failures_leave_the_owners_sign_in_and_password_change_working,
    ipv6_clients_share_one_budget_per_64,
    usernames_that_look_the_same_are_one_account,
    a_sign_in_leaves_a_current_hash_byte_for_byte_unchanged,
    a_planted_csrf_cookie_is_refused_for_a_signed_in_session,
    the_csrf_cookie_lasts_for_the_browser_session,
    a_registration_that_cannot_finish_leaves_no_account,
    every_hashing_slot_busy_is_a_503_with_retry_after,
);

const PASSWORD: &str = "correct horse battery";
/// Where the tests' requests come from (the socket's peer, as Rocket sees it).
const CLIENT_ADDRESS: &str = "203.0.113.9:50000";
/// The `User-Agent` the tests' requests send, unless a test says otherwise.
const USER_AGENT: &str = "AccountsTest/1.0";

/// The app, on SQLite without the session cache, so a second instance on the same file (a
/// second browser here) is safe; on Postgres with it, as instances run there.
async fn app(backend: Backend, extra: &[(&str, Value)]) -> Option<TestApp> {
    let mut settings: Vec<(&str, Value)> = extra.to_vec();
    if backend == Backend::Sqlite {
        settings.push(("session.cache_capacity", json!(0)));
    }
    TestApp::spawn_with(backend, &settings).await
}

/// POSTs `fields` as a form, with the CSRF token of the page at `form_page`.
async fn submit<'c>(
    client: &'c Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> LocalResponse<'c> {
    submit_from(client, CLIENT_ADDRESS, form_page, action, fields).await
}

/// As [`submit`], from the client address `from` (`ip:port`).
async fn submit_from<'c>(
    client: &'c Client,
    from: &str,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> LocalResponse<'c> {
    submit_as(client, from, USER_AGENT, form_page, action, fields).await
}

/// As [`submit_from`], from a browser that sends `user_agent`.
async fn submit_as<'c>(
    client: &'c Client,
    from: &str,
    user_agent: &str,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> LocalResponse<'c> {
    let page = read(client.get(form_page.to_owned()).dispatch().await)
        .await
        .1;
    let token = csrf_token_in(&page);
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("csrf_token", &token);
    for (name, value) in fields {
        body.append_pair(name, value);
    }
    post_as(client, from, user_agent, action, body.finish(), None).await
}

async fn post<'c>(
    client: &'c Client,
    action: &str,
    body: String,
    extra: Option<Header<'static>>,
) -> LocalResponse<'c> {
    post_from(client, CLIENT_ADDRESS, action, body, extra).await
}

async fn post_from<'c>(
    client: &'c Client,
    from: &str,
    action: &str,
    body: String,
    extra: Option<Header<'static>>,
) -> LocalResponse<'c> {
    post_as(client, from, USER_AGENT, action, body, extra).await
}

async fn post_as<'c>(
    client: &'c Client,
    from: &str,
    user_agent: &str,
    action: &str,
    body: String,
    extra: Option<Header<'static>>,
) -> LocalResponse<'c> {
    let mut request = client
        .post(action.to_owned())
        .remote(from.parse().expect("an address"))
        .header(ContentType::Form)
        .header(Header::new("User-Agent", user_agent.to_owned()))
        .body(body);
    if let Some(header) = extra {
        request = request.header(header);
    }
    request.dispatch().await
}

async fn register(client: &Client, username: &str, password: &str) -> (Status, String) {
    let fields = [("username", username), ("password", password)];
    read(submit(client, "/account/register", "/account/register", &fields).await).await
}

async fn sign_in(client: &Client, username: &str, password: &str) -> (Status, String) {
    let fields = [("username", username), ("password", password)];
    read(submit(client, "/account/login", "/account/login", &fields).await).await
}

async fn page(client: &Client, path: &str) -> (Status, String) {
    read(client.get(path.to_owned()).dispatch().await).await
}

/// The account the header says this browser is signed in to, if any.
async fn signed_in_as(client: &Client) -> Option<String> {
    let body = page(client, "/user").await.1;
    let marker = "Signed in as ";
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('<')? + start;
    Some(body[start..end].to_owned())
}

/// The handles of the devices listed on `/account/sessions`, the current one first.
async fn device_handles(client: &Client) -> Vec<String> {
    let body = page(client, "/account/sessions").await.1;
    let marker = r#"name="handle" value=""#;
    let mut handles = Vec::new();
    let mut rest = body.as_str();
    while let Some(start) = rest.find(marker) {
        rest = &rest[start + marker.len()..];
        let end = rest.find('"').expect("the end of a handle");
        handles.push(rest[..end].to_owned());
    }
    handles
}

async fn register_sign_out_and_sign_in_again(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };

    let registered = submit(
        &app.client,
        "/account/register",
        "/account/register",
        &[("username", "Ada"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(registered.status(), Status::SeeOther);
    assert_eq!(
        registered.headers().get_one("Location"),
        Some("/account/sessions")
    );
    assert_eq!(signed_in_as(&app.client).await.as_deref(), Some("Ada"));
    let rows = app.rows().await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].user_id.is_some(), "the session row knows its user");

    let signed_out = submit(&app.client, "/account/sessions", "/account/logout", &[]).await;
    assert_eq!(signed_out.status(), Status::SeeOther);
    assert_eq!(
        signed_out.headers().get_one("Location"),
        Some("/account/login")
    );
    let (_, login_page) = page(&app.client, "/account/login").await;
    assert!(login_page.contains("You are signed out."), "{login_page}");
    assert_eq!(signed_in_as(&app.client).await, None);

    let (status, _) = sign_in(&app.client, "ada", PASSWORD).await;
    assert_eq!(status, Status::SeeOther);
    assert_eq!(signed_in_as(&app.client).await.as_deref(), Some("Ada"));
    let (_, devices) = page(&app.client, "/account/sessions").await;
    assert!(
        devices.contains("Signed in as Ada."),
        "the flash: {devices}"
    );
    // As Tera escapes them.
    assert!(devices.contains("AccountsTest&#x2F;1.0"), "{devices}");
    assert!(devices.contains("This device"), "{devices}");
    assert!(
        devices.contains("203.0.113.0&#x2F;24"),
        "the network, not the address: {devices}"
    );
    assert!(!devices.contains("203.0.113.9"), "{devices}");
}

async fn a_flash_message_shows_once(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    register(&app.client, "Ada", PASSWORD).await;

    let (_, first) = page(&app.client, "/account/sessions").await;
    let (_, second) = page(&app.client, "/account/sessions").await;

    assert!(first.contains("your account is ready"), "{first}");
    assert!(!second.contains("your account is ready"), "{second}");
}

async fn a_shown_flash_message_leaves_no_flash_key_in_the_session(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let stored = async || {
        latch::testing::session(&app.client)
            .await
            .expect("the store answers")
            .expect("a session")
            .data
    };
    register(&app.client, "Ada", PASSWORD).await;
    assert!(stored().await.contains_key("flash"), "the welcome waits");

    let (_, shown) = page(&app.client, "/account/sessions").await;

    assert!(shown.contains("your account is ready"), "{shown}");
    let data = stored().await;
    assert!(!data.contains_key("flash"), "{data:?}");
    assert!(
        data.contains_key("account_name"),
        "the rest stays: {data:?}"
    );
}

async fn wrong_password_and_unknown_user_get_the_same_answer(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let other = app.second_instance().await;
    register(&other, "Ada", PASSWORD).await;

    let wrong_password = sign_in(&app.client, "Ada", "not the password").await;
    let unknown_user = sign_in(&app.client, "Nobody", "not the password").await;

    assert_eq!(wrong_password.0, Status::Unauthorized);
    assert_eq!(unknown_user.0, Status::Unauthorized);
    let message = "Wrong username or password.";
    assert!(wrong_password.1.contains(message) && unknown_user.1.contains(message));
    // Apart from the username echoed back and the form's token, the pages are the same.
    let strip = |body: &str, name: &str| {
        body.replace(&format!(r#"value="{name}""#), "")
            .replace(&csrf_token_in(body), "")
    };
    assert_eq!(
        strip(&wrong_password.1, "Ada"),
        strip(&unknown_user.1, "Nobody")
    );
    assert_eq!(signed_in_as(&app.client).await, None);
}

async fn failed_sign_ins_are_throttled_per_username_with_retry_after(backend: Backend) {
    let settings = [("accounts", json!({ "max_failures_per_user": 2 }))];
    let Some(app) = app(backend, &settings).await else {
        return;
    };
    let other = app.second_instance().await;
    register(&other, "Ada", PASSWORD).await;
    register(&other, "Grace", PASSWORD).await;

    for _ in 0..2 {
        assert_eq!(
            sign_in(&app.client, "ada", "wrong password").await.0,
            Status::Unauthorized
        );
    }
    let refused = submit(
        &app.client,
        "/account/login",
        "/account/login",
        &[("username", "Ada"), ("password", PASSWORD)],
    )
    .await;

    assert_eq!(refused.status(), Status::TooManyRequests);
    let retry_after: u64 = refused
        .headers()
        .get_one("Retry-After")
        .and_then(|seconds| seconds.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(
        signed_in_as(&app.client).await,
        None,
        "not even the right password"
    );
    // Other accounts are not affected, and the limit holds on the other instance too.
    assert_eq!(
        sign_in(&app.client, "Grace", PASSWORD).await.0,
        Status::SeeOther
    );
    assert_eq!(
        sign_in(&other, "Ada", PASSWORD).await.0,
        Status::TooManyRequests
    );
}

async fn failed_sign_ins_are_throttled_per_address_and_forged_headers_do_not_help(
    backend: Backend,
) {
    let settings = [(
        "accounts",
        json!({ "max_failures_per_user": 100, "max_failures_per_address": 3 }),
    )];
    let Some(app) = app(backend, &settings).await else {
        return;
    };
    for username in ["a1", "a2", "a3"] {
        assert_eq!(
            sign_in(&app.client, username, "wrong password").await.0,
            Status::Unauthorized
        );
    }

    let token = csrf_token_in(&page(&app.client, "/account/login").await.1);
    let body = format!("csrf_token={token}&username=someone&password=whatever1");
    let forged = Header::new("X-Real-IP", "198.51.100.7");
    let refused = post(&app.client, "/account/login", body, Some(forged)).await;

    assert_eq!(refused.status(), Status::TooManyRequests);
    assert!(refused.headers().get_one("Retry-After").is_some());
}

async fn sign_in_rotates_the_id_and_the_old_one_is_dead(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let other = app.second_instance().await;
    register(&other, "Ada", PASSWORD).await;
    page(&app.client, "/").await;
    let before = app.raw_cookie().expect("an anonymous session");
    let old_id = app.session_id().expect("an ID");

    assert_eq!(
        sign_in(&app.client, "Ada", PASSWORD).await.0,
        Status::SeeOther
    );

    assert_ne!(app.raw_cookie().expect("a session"), before);
    assert!(app.row_for(&old_id).await.is_none(), "the old ID is gone");
    // Replayed from another browser (this one's jar would drop its cookie on the answer).
    let replayer = app.second_instance().await;
    let replay = replayer
        .get("/user")
        .cookie(rocket::http::Cookie::new("session", before))
        .dispatch()
        .await;
    let replayed = read(replay).await.1;
    assert!(!replayed.contains("Signed in as"), "{replayed}");
    assert_eq!(signed_in_as(&app.client).await.as_deref(), Some("Ada"));
}

async fn the_device_list_shows_both_browsers_and_one_signs_out_the_other(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let (laptop, phone) = (&app.client, &app.second_instance().await);
    let mallory = &app.second_instance().await;
    register(laptop, "Ada", PASSWORD).await;
    sign_in(phone, "Ada", PASSWORD).await;
    register(mallory, "Mallory", PASSWORD).await;

    let (_, list) = page(laptop, "/account/sessions").await;
    assert_eq!(list.matches("This device").count(), 1, "{list}");
    let handles = device_handles(laptop).await;
    assert_eq!(handles.len(), 1, "a button for the other device only");
    let phone_handle = &handles[0];

    // Another account's handle does nothing.
    let fields = [("handle", phone_handle.as_str())];
    submit(
        mallory,
        "/account/sessions",
        "/account/sessions/revoke",
        &fields,
    )
    .await;
    assert_eq!(signed_in_as(phone).await.as_deref(), Some("Ada"));

    let revoked = submit(
        laptop,
        "/account/sessions",
        "/account/sessions/revoke",
        &fields,
    )
    .await;
    assert_eq!(revoked.status(), Status::SeeOther);

    assert_eq!(signed_in_as(phone).await, None, "the phone is signed out");
    let back = phone.get("/account/sessions").dispatch().await;
    assert_eq!(back.status(), Status::SeeOther);
    let (_, list) = page(laptop, "/account/sessions").await;
    assert!(list.contains("That device is signed out."), "{list}");
    assert!(device_handles(laptop).await.is_empty());
}

async fn the_device_list_names_each_browser_with_its_user_agent_on_hover(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let (laptop, phone, odd) = (
        &app.client,
        &app.second_instance().await,
        &app.second_instance().await,
    );
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
                  (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
    let hostile = r#"Evil/1.0 "><script>alert(1)</script>"#;
    let credentials = [("username", "Ada"), ("password", PASSWORD)];
    let register = "/account/register";
    submit_as(
        laptop,
        CLIENT_ADDRESS,
        firefox,
        register,
        register,
        &credentials,
    )
    .await;
    let login = "/account/login";
    submit_as(phone, CLIENT_ADDRESS, safari, login, login, &credentials).await;
    submit_as(odd, CLIENT_ADDRESS, hostile, login, login, &credentials).await;

    let (_, list) = page(laptop, "/account/sessions").await;

    // The name people use, with the raw string (as Tera escapes it) in its hover title.
    let escaped = |agent: &str| {
        agent
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('/', "&#x2F;")
    };
    assert!(
        list.contains(&format!(
            r#"<span title="{}">Firefox on Linux</span>"#,
            escaped(firefox)
        )),
        "{list}"
    );
    assert!(
        list.contains(&format!(
            r#"<span title="{}">Safari on iPhone</span>"#,
            escaped(safari)
        )),
        "{list}"
    );
    assert!(
        list.contains(&format!(
            r#"<span title="{}">Unknown browser</span>"#,
            escaped(hostile)
        )),
        "{list}"
    );
    assert!(!list.contains("<script>alert"), "{list}");
}

async fn signing_out_everywhere_else_keeps_only_this_device(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let (this, second, third) = (
        &app.client,
        &app.second_instance().await,
        &app.second_instance().await,
    );
    register(this, "Ada", PASSWORD).await;
    sign_in(second, "Ada", PASSWORD).await;
    sign_in(third, "Ada", PASSWORD).await;
    assert_eq!(device_handles(this).await.len(), 2);

    let done = submit(
        this,
        "/account/sessions",
        "/account/sessions/revoke-others",
        &[],
    )
    .await;

    assert_eq!(done.status(), Status::SeeOther);
    assert_eq!(signed_in_as(second).await, None);
    assert_eq!(signed_in_as(third).await, None);
    assert_eq!(signed_in_as(this).await.as_deref(), Some("Ada"));
    let (_, list) = page(this, "/account/sessions").await;
    assert!(
        list.contains("Signed out everywhere else (2 sessions)."),
        "{list}"
    );
}

async fn a_password_change_needs_the_current_one_and_ends_the_other_sessions(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let (this, other) = (&app.client, &app.second_instance().await);
    register(this, "Ada", PASSWORD).await;
    sign_in(other, "Ada", PASSWORD).await;
    let new = "a much newer password";

    let wrong = [("current_password", "not it at all"), ("new_password", new)];
    let refused = read(submit(this, "/account/password", "/account/password", &wrong).await).await;
    assert_eq!(refused.0, Status::Unauthorized);
    assert!(refused.1.contains("Your current password is not right."));
    assert_eq!(
        signed_in_as(other).await.as_deref(),
        Some("Ada"),
        "nothing changed"
    );

    let right = [("current_password", PASSWORD), ("new_password", new)];
    let changed = submit(this, "/account/password", "/account/password", &right).await;
    assert_eq!(changed.status(), Status::SeeOther);

    assert_eq!(signed_in_as(other).await, None, "the other session ended");
    assert_eq!(signed_in_as(this).await.as_deref(), Some("Ada"));
    let (_, list) = page(this, "/account/sessions").await;
    assert!(
        list.contains("Password changed. 1 other session was signed out."),
        "{list}"
    );
    let fresh = app.second_instance().await;
    assert_eq!(
        sign_in(&fresh, "Ada", PASSWORD).await.0,
        Status::Unauthorized
    );
    assert_eq!(sign_in(&fresh, "Ada", new).await.0, Status::SeeOther);
}

async fn usernames_are_unique_whatever_their_case_and_passwords_have_rules(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let other = app.second_instance().await;
    assert_eq!(register(&other, "Ada", PASSWORD).await.0, Status::SeeOther);

    let taken = register(&app.client, "ADA", PASSWORD).await;
    let short = register(&app.client, "Grace", "seven77").await;
    let long = register(&app.client, "Grace", &"x".repeat(1025)).await;
    let bad_name = register(&app.client, "", PASSWORD).await;

    for (outcome, says) in [
        (&taken, "That username is taken"),
        (&short, "at least 8 characters"),
        (&long, "at most 1024 characters"),
        (&bad_name, "Invalid username"),
    ] {
        assert_eq!(outcome.0, Status::UnprocessableEntity, "{}", outcome.1);
        assert!(outcome.1.contains(says), "{says}: {}", outcome.1);
    }
    assert_eq!(signed_in_as(&app.client).await, None);
    assert_eq!(
        register(&app.client, "Grace", &"x".repeat(1024)).await.0,
        Status::SeeOther
    );
}

async fn every_account_form_needs_the_csrf_token(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let other = app.second_instance().await;
    register(&app.client, "Ada", PASSWORD).await;
    register(&other, "Mallory", PASSWORD).await;
    let handle = device_handles(&app.client).await;
    let mallory_token = csrf_token_in(&page(&other, "/account/sessions").await.1);
    let forms = [
        (
            "/account/register",
            "username=Eve&password=correct horse 2".to_owned(),
        ),
        (
            "/account/login",
            format!("username=Ada&password={PASSWORD}"),
        ),
        ("/account/logout", String::new()),
        (
            "/account/sessions/revoke",
            format!("handle={}", handle.first().cloned().unwrap_or_default()),
        ),
        ("/account/sessions/revoke-others", String::new()),
        (
            "/account/password",
            "current_password=x&new_password=yyyyyyyyyy".to_owned(),
        ),
    ];

    for (action, fields) in forms {
        for token in [
            "",
            "csrf_token=forged&",
            &format!("csrf_token={mallory_token}&"),
        ] {
            let body = format!("{token}{fields}");
            let refused = post(&app.client, action, body, None).await;
            assert_eq!(
                refused.status(),
                Status::Forbidden,
                "{action} with {token:?}"
            );
        }
    }
    assert_eq!(signed_in_as(&app.client).await.as_deref(), Some("Ada"));
    assert_eq!(
        sign_in(&other, "Eve", "correct horse 2").await.0,
        Status::Unauthorized
    );
}

async fn signed_out_the_account_pages_send_you_to_sign_in(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };

    for path in ["/account/sessions", "/account/password"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), Status::SeeOther, "{path}");
        assert_eq!(
            response.headers().get_one("Location"),
            Some("/account/login")
        );
    }
    for path in ["/account/login", "/account/register"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), Status::Ok, "{path}");
        assert_eq!(
            response.headers().get_one("Cache-Control"),
            Some("no-store"),
            "{path}"
        );
    }
}

async fn signed_out_the_account_forms_check_their_token_then_send_you_to_sign_in(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let forms = [
        "/account/logout",
        "/account/sessions/revoke",
        "/account/sessions/revoke-others",
        "/account/password",
    ];

    for action in forms {
        let refused = post(&app.client, action, "csrf_token=forged".into(), None).await;
        assert_eq!(refused.status(), Status::Forbidden, "{action}");

        let sent = app.post_form_with_token(action, "handle=x").await;
        assert_eq!(sent.status(), Status::SeeOther, "{action}");
        assert_eq!(
            sent.headers().get_one("Location"),
            Some("/account/login"),
            "{action}"
        );
    }
    assert!(app.rows().await.is_empty(), "nothing was stored");
}

async fn the_inspector_shows_who_a_session_belongs_to(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    page(&app.client, "/").await;
    let (_, anonymous) = page(&app.client, "/session").await;
    assert!(
        anonymous.contains("Nobody: an anonymous session."),
        "{anonymous}"
    );

    register(&app.client, "Ada", PASSWORD).await;
    // Every page with the session names the account in its header.
    for path in ["/", "/user", "/user/Grace", "/account/sessions"] {
        let (_, body) = page(&app.client, path).await;
        assert!(body.contains("Signed in as Ada</a>"), "{path}: {body}");
    }
    let (status, signed_in) = page(&app.client, "/session").await;

    assert_eq!(status, Status::Ok);
    // The account's opaque id, never its sequential row id.
    let public_id = app
        .db
        .query_text("select public_id from accounts where username = 'Ada'")
        .await;
    assert_eq!(public_id.len(), 22, "{public_id}");
    assert!(
        signed_in.contains(&format!("user id <code>{public_id}</code> (Ada)")),
        "{signed_in}"
    );
    assert!(!signed_in.contains("user id <code>1</code>"), "{signed_in}");
    assert!(signed_in.contains("Last seen"), "{signed_in}");
    assert!(
        signed_in.contains("AccountsTest&#x2F;1.0, network 203.0.113.0&#x2F;24"),
        "{signed_in}"
    );
}

async fn a_hash_made_under_older_parameters_is_replaced_at_sign_in(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    register(&app.client, "Ada", PASSWORD).await;
    let weaker = argon2::Params::new(8 * 1024, 1, 1, None).expect("valid parameters");
    let old_hash = argon2::password_hash::PasswordHasher::hash_password(
        &argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, weaker),
        PASSWORD.as_bytes(),
    )
    .expect("a hash")
    .to_string();
    app.db
        .execute_sql(&format!("update accounts set password_hash = '{old_hash}'"))
        .await;
    let other = app.second_instance().await;

    assert_eq!(sign_in(&other, "Ada", PASSWORD).await.0, Status::SeeOther);

    let stored = app
        .db
        .query_text("select password_hash from accounts")
        .await;
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert_ne!(stored, old_hash);
}

async fn a_configured_ip_header_names_the_client_address(backend: Backend) {
    let settings = [
        ("ip_header", json!("X-Real-IP")),
        (
            "accounts",
            json!({ "max_failures_per_user": 100, "max_failures_per_address": 1 }),
        ),
    ];
    let Some(app) = app(backend, &settings).await else {
        return;
    };
    let attempt = |address: &'static str| {
        let client = &app.client;
        async move {
            let token = csrf_token_in(&page(client, "/account/login").await.1);
            let body = format!("csrf_token={token}&username=someone&password=whatever1");
            post(
                client,
                "/account/login",
                body,
                Some(Header::new("X-Real-IP", address)),
            )
            .await
            .status()
        }
    };

    assert_eq!(attempt("198.51.100.1").await, Status::Unauthorized);
    assert_eq!(
        attempt("198.51.100.2").await,
        Status::Unauthorized,
        "another address"
    );
    assert_eq!(attempt("198.51.100.1").await, Status::TooManyRequests);
}

async fn registrations_are_limited_per_address(backend: Backend) {
    let settings = [("accounts", json!({ "max_registrations_per_address": 2 }))];
    let Some(app) = app(backend, &settings).await else {
        return;
    };
    let other = app.second_instance().await;

    assert_eq!(
        register(&app.client, "Ada", PASSWORD).await.0,
        Status::SeeOther
    );
    assert_eq!(
        register(&other, "Grace", PASSWORD).await.0,
        Status::SeeOther
    );
    let refused = submit(
        &app.client,
        "/account/register",
        "/account/register",
        &[("username", "Mallory"), ("password", PASSWORD)],
    )
    .await;

    assert_eq!(refused.status(), Status::TooManyRequests);
    assert!(refused.headers().get_one("Retry-After").is_some());
    drop(refused);
    // No account was made, and signing in is a different limit.
    assert_eq!(
        sign_in(&other, "Mallory", PASSWORD).await.0,
        Status::Unauthorized
    );
    assert_eq!(sign_in(&other, "Ada", PASSWORD).await.0, Status::SeeOther);
}

/// The scopes of the throttle's recorded attempts, sorted.
async fn throttled_scopes(app: &TestApp) -> Vec<String> {
    let concat = match app.backend {
        Backend::Sqlite => "group_concat(scope, '|')",
        Backend::Postgres => "string_agg(scope, '|')",
    };
    let all = app
        .db
        .query_text(&format!(
            "select coalesce({concat}, '') from throttled_attempts"
        ))
        .await;
    let mut scopes: Vec<String> = all
        .split('|')
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
        .collect();
    scopes.sort();
    scopes
}

async fn sign_in_input_no_account_could_have_is_a_counted_401(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    register(&app.client, "Ada", PASSWORD).await;
    submit(&app.client, "/account/sessions", "/account/logout", &[]).await;
    let long_password = "x".repeat(1025);
    let three_thousand = "a".repeat(3000);

    let answers = [
        sign_in(&app.client, "nul\0byte", PASSWORD).await,
        sign_in(&app.client, &three_thousand, PASSWORD).await,
        sign_in(&app.client, "", PASSWORD).await,
        sign_in(&app.client, "Ada", &long_password).await,
        sign_in(&app.client, "Ada", "short").await,
    ];

    for (status, body) in &answers {
        assert_eq!(*status, Status::Unauthorized, "{body}");
        assert!(body.contains("Wrong username or password."), "{body}");
    }
    // Each counted against the client's network, and none under a username.
    let sign_ins: Vec<String> = throttled_scopes(&app)
        .await
        .into_iter()
        .filter(|scope| scope.starts_with("sign-in"))
        .collect();
    assert_eq!(sign_ins, vec!["sign-in address:203.0.113.9".to_owned(); 5]);
}

async fn strangers_failures_leave_the_owners_sign_in_and_password_change_working(backend: Backend) {
    const STRANGER: &str = "198.51.100.66:4000";
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let owner = app.second_instance().await;
    register(&owner, "Ada", PASSWORD).await;
    let stranger = &app.client;

    let mut refused = 0;
    for _ in 0..8 {
        let answer = submit_from(
            stranger,
            STRANGER,
            "/account/login",
            "/account/login",
            &[("username", "ada"), ("password", "a wrong guess")],
        )
        .await;
        refused += usize::from(answer.status() == Status::TooManyRequests);
    }
    let change = submit(
        &owner,
        "/account/password",
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a new password"),
        ],
    )
    .await
    .status();
    submit(&owner, "/account/sessions", "/account/logout", &[]).await;
    let owner_signs_in = sign_in(&owner, "Ada", "a new password").await.0;

    assert_eq!(refused, 3, "the stranger is held to five guesses");
    assert_eq!(change, Status::SeeOther, "the owner's change goes through");
    assert_eq!(owner_signs_in, Status::SeeOther, "from the owner's network");
}

async fn ipv6_clients_share_one_budget_per_64(backend: Backend) {
    let settings = [("accounts", json!({ "max_failures_per_address": 2 }))];
    let Some(app) = app(backend, &settings).await else {
        return;
    };
    let attempt = |from: &'static str, username: &'static str| {
        let client = &app.client;
        async move {
            submit_from(
                client,
                from,
                "/account/login",
                "/account/login",
                &[("username", username), ("password", "a wrong guess")],
            )
            .await
            .status()
        }
    };

    let first = attempt("[2001:db8:1:2::1]:4000", "a").await;
    let second = attempt("[2001:db8:1:2:ffff::9]:4000", "b").await;
    let same_64 = attempt("[2001:db8:1:2:abcd::3]:4000", "c").await;
    let next_64 = attempt("[2001:db8:1:3::1]:4000", "d").await;

    assert_eq!(
        [first, second, same_64, next_64],
        [
            Status::Unauthorized,
            Status::Unauthorized,
            Status::TooManyRequests,
            Status::Unauthorized
        ]
    );
}

async fn usernames_that_look_the_same_are_one_account(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    let other = app.second_instance().await;
    for name in ["Jos\u{e9}", "ada", "paypal"] {
        assert_eq!(register(&other, name, PASSWORD).await.0, Status::SeeOther);
        submit(&other, "/account/sessions", "/account/logout", &[]).await;
    }

    for look_alike in [
        "Jose\u{301}",
        "\u{ff41}\u{ff44}\u{ff41}",
        "p\u{430}ypal",
        "PayPal",
    ] {
        let (status, body) = register(&app.client, look_alike, PASSWORD).await;
        assert_eq!(
            status,
            Status::UnprocessableEntity,
            "{look_alike:?}: {body}"
        );
        assert!(body.contains("taken"), "{body}");
    }
    let accounts = app
        .db
        .query_text("select cast(count(*) as text) from accounts")
        .await;
    assert_eq!(accounts, "3");
    // The decomposed and fullwidth forms sign in to the accounts they look like.
    assert_eq!(
        sign_in(&app.client, "Jose\u{301}", PASSWORD).await.0,
        Status::SeeOther
    );
    assert_eq!(
        signed_in_as(&app.client).await.as_deref(),
        Some("Jos\u{e9}")
    );
    assert_eq!(
        sign_in(&app.client, "\u{ff41}\u{ff44}\u{ff41}", PASSWORD)
            .await
            .0,
        Status::SeeOther
    );
}

async fn a_sign_in_leaves_a_current_hash_byte_for_byte_unchanged(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    register(&app.client, "Ada", PASSWORD).await;
    let before = app
        .db
        .query_text("select password_hash from accounts")
        .await;

    submit(&app.client, "/account/sessions", "/account/logout", &[]).await;
    assert_eq!(
        sign_in(&app.client, "Ada", PASSWORD).await.0,
        Status::SeeOther
    );

    let after = app
        .db
        .query_text("select password_hash from accounts")
        .await;
    assert_eq!(after, before);
}

async fn a_planted_csrf_cookie_is_refused_for_a_signed_in_session(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };
    register(&app.client, "Ada", PASSWORD).await;
    let other_device = app.second_instance().await;
    sign_in(&other_device, "Ada", PASSWORD).await;
    // The attacker's own cookieless visit mints a CSRF cookie and its token...
    let attacker = app.second_instance().await;
    let token = csrf_token_in(&page(&attacker, "/account/login").await.1);
    let planted = attacker
        .cookies()
        .get(crate::helpers::CSRF_COOKIE)
        .expect("a CSRF cookie")
        .value()
        .to_owned();
    let session = app.raw_cookie().expect("the victim's session cookie");
    let devices = device_handles(&app.client).await;
    assert!(!devices.is_empty(), "the other device is listed");

    // ...which, planted beside the victim's session cookie, must not pass for it.
    let forged = app
        .client
        .post("/account/sessions/revoke-others")
        .remote(CLIENT_ADDRESS.parse().expect("an address"))
        .cookie(rocket::http::Cookie::new(crate::helpers::COOKIE, session))
        .cookie(rocket::http::Cookie::new(
            crate::helpers::CSRF_COOKIE,
            planted,
        ))
        .header(ContentType::Form)
        .body(format!("csrf_token={token}"))
        .dispatch()
        .await
        .status();

    assert_eq!(forged, Status::Forbidden);
    assert_eq!(
        device_handles(&app.client).await,
        devices,
        "the other device is still signed in"
    );
}

async fn the_csrf_cookie_lasts_for_the_browser_session(backend: Backend) {
    let Some(app) = app(backend, &[]).await else {
        return;
    };

    let response = app.client.get("/account/login").dispatch().await;

    let csrf: Vec<&str> = response
        .headers()
        .get("Set-Cookie")
        .filter(|cookie| cookie.starts_with("csrf="))
        .collect();
    assert_eq!(csrf.len(), 1, "{csrf:?}");
    let attributes = csrf[0].to_ascii_lowercase();
    assert!(
        !attributes.contains("expires") && !attributes.contains("max-age"),
        "{attributes}"
    );
}

async fn a_registration_that_cannot_finish_leaves_no_account(backend: Backend) {
    // Too small for the session a new account signs in with (its name and welcome message).
    let settings = [("session.max_data_bytes", json!(64))];
    let Some(app) = app(backend, &settings).await else {
        return;
    };

    let (status, body) = register(&app.client, "Ada", PASSWORD).await;

    assert_eq!(status, Status::PayloadTooLarge, "{body}");
    let accounts = app
        .db
        .query_text("select cast(count(*) as text) from accounts")
        .await;
    assert_eq!(accounts, "0");
    assert_eq!(signed_in_as(&app.client).await, None);
    assert!(
        app.rows().await.iter().all(|row| row.user_id.is_none()),
        "no session is signed in"
    );
    // The hash it spent still counts against the network's budget.
    assert_eq!(
        throttled_scopes(&app).await,
        vec!["register address:203.0.113.9".to_owned()]
    );
}

async fn every_hashing_slot_busy_is_a_503_with_retry_after(backend: Backend) {
    let settings = [(
        "accounts",
        json!({ "max_concurrent_hashes": 1, "hash_wait_ms": 0, "max_failures_per_address": 100 }),
    )];
    let Some(app) = app(backend, &settings).await else {
        return;
    };
    let token = csrf_token_in(&page(&app.client, "/account/login").await.1);
    let client = &app.client;
    let attempts = (0..8).map(|i| {
        let body = format!("csrf_token={token}&username=nobody{i}&password=whatever1");
        async move {
            let response = post(client, "/account/login", body, None).await;
            let retry_after = response.headers().get_one("Retry-After").map(str::to_owned);
            (response.status(), retry_after)
        }
    });

    let answers = futures::future::join_all(attempts).await;

    let busy: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == Status::ServiceUnavailable)
        .collect();
    assert!(!busy.is_empty(), "{answers:?}");
    assert!(busy.iter().all(|(_, retry)| retry.is_some()), "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(status, _)| [Status::Unauthorized, Status::ServiceUnavailable].contains(status)),
        "{answers:?}"
    );
    // A request turned away checked nothing, so it gave its place back.
    let counted = throttled_scopes(&app).await.len();
    let unauthorized = answers
        .iter()
        .filter(|(status, _)| *status == Status::Unauthorized)
        .count();
    assert_eq!(counted, unauthorized * 3, "{answers:?}");
}
