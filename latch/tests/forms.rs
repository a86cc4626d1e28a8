//! Forms that check themselves: `CsrfForm<T>` refuses a missing or wrong token, and a
//! cross-site request, before the handler runs, or hands the refusal to a handler that asks
//! for it; `trusted_origins` lets a separate front end or a proxy's public origin through, and
//! nothing else.

#![cfg(feature = "sqlite")]

use latch::{CsrfForm, CsrfFormError, CsrfToken, Key, Latch, Session, SessionError};
use rocket::figment::Figment;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{Build, FromForm, Rocket, get, post, routes};

const NOTE: Key<String> = Key::new("note");

#[derive(FromForm)]
struct Note {
    text: String,
}

#[get("/form")]
#[expect(
    clippy::needless_pass_by_value,
    reason = "Rocket hands a handler its guards by value"
)]
fn form(token: CsrfToken<'_>) -> String {
    token.value()
}

#[get("/note")]
async fn read(session: Session<'_>) -> Result<String, SessionError> {
    Ok(session.get(&NOTE).await?.unwrap_or_default())
}

#[post("/note", data = "<note>")]
async fn write(session: Session<'_>, note: CsrfForm<Note>) -> Result<&'static str, SessionError> {
    session.insert(&NOTE, &note.text).await?;
    Ok("saved")
}

#[post("/note-or-say-why", data = "<note>")]
async fn write_or_say_why(
    session: Session<'_>,
    note: Result<CsrfForm<Note>, CsrfFormError<'_>>,
) -> Result<String, SessionError> {
    match note {
        Ok(note) => {
            session.insert(&NOTE, &note.text).await?;
            Ok("saved".into())
        }
        Err(error) => Ok(format!("refused: {}", error.status().code)),
    }
}

async fn client(settings: &[(&str, serde_json::Value)]) -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}", dir.path().join("forms.db").display());
    let mut figment: Figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("latch.database_url", url));
    for (key, value) in settings {
        figment = figment.merge((*key, value.clone()));
    }
    let rocket: Rocket<Build> = rocket::custom(figment)
        .attach(Latch::fairing())
        .mount("/", routes![form, read, write, write_or_say_why]);
    let client = Client::tracked(rocket).await.expect("the app launches");
    (client, dir)
}

async fn token(client: &Client) -> String {
    let response = client.get("/form").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    response.into_string().await.expect("a token")
}

async fn post<'c>(
    client: &'c Client,
    path: &'c str,
    body: String,
    headers: &[(&'static str, &'static str)],
) -> LocalResponse<'c> {
    let mut request = client.post(path).header(ContentType::Form).body(body);
    for (name, value) in headers {
        request = request.header(Header::new(*name, *value));
    }
    request.dispatch().await
}

async fn stored(client: &Client) -> String {
    client
        .get("/note")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_with_this_browsers_token_is_handled_and_its_token_is_not_the_handlers() {
    let (client, _dir) = client(&[]).await;
    let token = token(&client).await;

    let response = post(
        &client,
        "/note",
        format!("text=hello&csrf_token={token}"),
        &[],
    )
    .await;

    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.into_string().await.as_deref(), Some("saved"));
    assert_eq!(stored(&client).await, "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_is_403_and_the_handler_never_runs() {
    let (client, _dir) = client(&[]).await;
    let token = token(&client).await;
    // The right token with one character changed (to one it surely is not: a fixed
    // replacement is sometimes what was already there).
    let first = if token.starts_with('A') { 'B' } else { 'A' };
    let wrong = format!("{first}{}", &token[1..]);

    for body in [
        "text=forged".to_owned(),
        format!("text=forged&csrf_token={wrong}"),
    ] {
        let response = post(&client, "/note", body, &[]).await;
        assert_eq!(response.status(), Status::Forbidden);
    }
    assert_eq!(stored(&client).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_that_does_not_parse_is_what_form_would_answer() {
    let (client, _dir) = client(&[]).await;
    let token = token(&client).await;

    let response = post(&client, "/note", format!("csrf_token={token}"), &[]).await;

    assert_eq!(response.status(), Status::UnprocessableEntity);
    assert_eq!(stored(&client).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_takes_the_result_answers_the_refusal_itself() {
    let (client, _dir) = client(&[]).await;
    let token = token(&client).await;

    let forged = post(&client, "/note-or-say-why", "text=x".to_owned(), &[]).await;
    assert_eq!(forged.status(), Status::Ok);
    assert_eq!(forged.into_string().await.as_deref(), Some("refused: 403"));
    let unparsed = post(
        &client,
        "/note-or-say-why",
        format!("csrf_token={token}"),
        &[],
    )
    .await;
    assert_eq!(
        unparsed.into_string().await.as_deref(),
        Some("refused: 422")
    );
    assert_eq!(stored(&client).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_form_is_checked_the_same_way() {
    let (client, _dir) = client(&[]).await;
    let token = token(&client).await;
    let multipart = |token: &str| {
        format!(
            "--XBOUNDARY\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
             --XBOUNDARY\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nfrom multipart\r\n\
             --XBOUNDARY--\r\n"
        )
    };
    let content_type =
        ContentType::new("multipart", "form-data").with_params(("boundary", "XBOUNDARY"));

    let forged = client
        .post("/note")
        .header(content_type.clone())
        .body(multipart("not-the-token"))
        .dispatch()
        .await;
    assert_eq!(forged.status(), Status::Forbidden);
    let response = client
        .post("/note")
        .header(content_type)
        .body(multipart(&token))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(stored(&client).await, "from multipart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_origin_is_refused_even_with_the_right_token() {
    let (client, _dir) = client(&[]).await;
    let token = token(&client).await;
    let body = format!("text=x&csrf_token={token}");

    let cross = post(
        &client,
        "/note",
        body.clone(),
        &[("Origin", "https://evil.example")],
    )
    .await;
    assert_eq!(cross.status(), Status::Forbidden);
    let sibling = post(&client, "/note", body, &[("Sec-Fetch-Site", "same-site")]).await;
    assert_eq!(sibling.status(), Status::Forbidden);
    assert_eq!(stored(&client).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_origin_passes_and_only_that_one() {
    let trusted = serde_json::json!(["https://app.example.com"]);
    let (client, _dir) = client(&[("latch.trusted_origins", trusted)]).await;
    let body = format!(
        "text=from the front end&csrf_token={}",
        token(&client).await
    );

    // A front end on a sibling subdomain: the browser says same-site, and names its origin.
    let sibling = post(
        &client,
        "/note",
        body.clone(),
        &[
            ("Origin", "https://app.example.com"),
            ("Sec-Fetch-Site", "same-site"),
        ],
    )
    .await;
    assert_eq!(sibling.status(), Status::Ok);
    assert_eq!(stored(&client).await, "from the front end");

    // Behind a proxy that rewrites `Host`: the public origin is the trusted one. (The browser
    // has a session now, so its token is the session's.)
    let body = format!("text=through the proxy&csrf_token={}", token(&client).await);
    let proxied = post(
        &client,
        "/note",
        body.clone(),
        &[
            ("Origin", "https://app.example.com"),
            ("Host", "10.0.0.7:8000"),
        ],
    )
    .await;
    assert_eq!(proxied.status(), Status::Ok);
    assert_eq!(stored(&client).await, "through the proxy");

    for origin in [
        "http://app.example.com",
        "https://app.example.com.evil.example",
        "https://evil.example",
        "null",
    ] {
        let response = post(
            &client,
            "/note",
            body.clone(),
            &[("Origin", origin), ("Sec-Fetch-Site", "cross-site")],
        )
        .await;
        assert_eq!(response.status(), Status::Forbidden, "{origin}");
    }
    assert_eq!(stored(&client).await, "through the proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_origin_that_is_not_an_origin_stops_the_launch() {
    for entry in ["app.example.com", "https://app.example.com/path", "ftp://x"] {
        let figment = Figment::new().merge(("latch.trusted_origins", [entry]));
        let error = latch::Config::from_figment(&figment).expect_err(entry);
        assert_eq!(error.key, "latch.trusted_origins", "{error}");
    }
}
