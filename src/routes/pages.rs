//! The server-rendered walkthrough: a page-view counter, set / view / destroy a name, and login.

use rocket::form::{Errors, FromForm};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{Responder, Route, get, post, routes, uri};
use serde_json::json;

use super::keys::{ACCOUNT_NAME, NAME, PAGE_VIEWS};
use crate::error::AppError;
use crate::name::{MAX_NAME_CHARS, Name};
use crate::templates::Page;
use latch::{CsrfForm, CsrfFormError, CsrfToken, NoFields, Session};

pub fn routes() -> Vec<Route> {
    routes![
        counter,
        set_user,
        show_user,
        logout_confirm,
        logout,
        login_form,
        login
    ]
}

/// Counts this session's visits, and greets a signed-in visitor by name.
#[get("/")]
async fn counter(session: Session<'_>, csrf: CsrfToken<'_>) -> Result<Page, AppError> {
    let views = session
        .update(&PAGE_VIEWS, |views| views.unwrap_or(0).saturating_add(1))
        .await?;
    let name = session.get(&NAME).await?;
    let account = session.get(&ACCOUNT_NAME).await?;
    Ok(Page::render(
        "index",
        json!({
            "views": views,
            "name": name,
            "account": account,
            "session_csrf": csrf.for_session(),
        }),
    ))
}

/// Stores a name in the session. A GET that writes, as the tutorial has it: see the README's
/// security model for why that is tolerable here and what a real app does instead.
#[get("/user/<name>")]
async fn set_user(name: &str, session: Session<'_>, csrf: CsrfToken<'_>) -> Result<Page, AppError> {
    let name = Name::parse(name)?;
    session.insert(&NAME, &name.to_string()).await?;
    let account = session.get(&ACCOUNT_NAME).await?;
    Ok(Page::render(
        "user_set",
        json!({
            "name": name.as_str(),
            "account": account,
            "session_csrf": csrf.for_session(),
        }),
    ))
}

/// Shows the stored name, if there is one.
#[get("/user")]
async fn show_user(session: Session<'_>, csrf: CsrfToken<'_>) -> Result<Page, AppError> {
    let name = session.get(&NAME).await?;
    let account = session.get(&ACCOUNT_NAME).await?;
    Ok(Page::render(
        "user",
        json!({ "name": name, "account": account, "session_csrf": csrf.for_session() }),
    ))
}

/// A form that only carries the CSRF token.
/// Asks before logging out: a GET must not change anything, or any site could log a visitor
/// out with a link or an image.
#[expect(
    clippy::needless_pass_by_value,
    reason = "Rocket hands request guards over by value"
)]
#[get("/logout")]
fn logout_confirm(csrf: CsrfToken<'_>) -> Page {
    let (form_token, session_token) = form_tokens(&csrf);
    Page::render(
        "logout_confirm",
        json!({ "csrf": form_token, "session_csrf": session_token }),
    )
}

/// Ends the session: its row is deleted and its cookie removed.
#[post("/logout", data = "<form>")]
async fn logout(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
    session: Session<'_>,
) -> Result<Page, AppError> {
    form.map_err(refused)?;
    session.destroy().await?;
    Ok(Page::render("logout", json!({})))
}

#[derive(FromForm)]
struct Login<'r> {
    username: Option<&'r str>,
}

/// What the login form answers.
#[derive(Responder)]
enum LoginAnswer {
    /// Signed in: on to the greeting (303).
    SignedIn(Redirect),
    /// The form again, saying what is wrong with the name; nothing was stored.
    #[response(status = 422)]
    Invalid(Page),
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "Rocket hands request guards over by value"
)]
#[get("/login")]
fn login_form(csrf: CsrfToken<'_>) -> Page {
    login_page(&csrf, None, "")
}

/// Signs in: gives the session a new ID and stores the name in the same step (so neither an
/// ID seen before login nor a request still holding it ever sees the name), and sends the
/// browser to the greeting.
#[post("/login", data = "<form>")]
async fn login(
    form: Result<CsrfForm<Login<'_>>, CsrfFormError<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
) -> Result<LoginAnswer, AppError> {
    let form = form.map_err(refused)?;
    let Some(username) = form.username.filter(|name| !name.is_empty()) else {
        let page = login_page(&csrf, Some("Please enter a username."), "");
        return Ok(LoginAnswer::Invalid(page));
    };
    let name = match Name::parse(username) {
        Ok(name) => name,
        Err(error) => {
            let page = login_page(&csrf, Some(&format!("Invalid name: {error}.")), username);
            return Ok(LoginAnswer::Invalid(page));
        }
    };
    let name = name.into_string();
    session
        .regenerate_with(|data| data.insert(&NAME, &name))
        .await?;
    Ok(LoginAnswer::SignedIn(Redirect::to(uri!(counter))))
}

/// A form body Rocket could not read: too large (413), or not a form at all (400).
/// What the app answers when a [`CsrfForm`] refuses a request: its own 403 page for a missing
/// or wrong token, 413 or 400 for a form that cannot be read.
pub(super) fn refused(error: CsrfFormError<'_>) -> AppError {
    match error {
        CsrfFormError::Session(error) => error.into(),
        CsrfFormError::Form(errors) => form_error(&errors),
        _ => AppError::BadRequest("the form could not be read".into()),
    }
}

fn form_error(errors: &Errors<'_>) -> AppError {
    if errors.status() == Status::PayloadTooLarge {
        AppError::TooLarge
    } else {
        AppError::BadRequest("the form could not be read".into())
    }
}

fn login_page(csrf: &CsrfToken<'_>, error: Option<&str>, username: &str) -> Page {
    let (form_token, session_token) = form_tokens(csrf);
    Page::render(
        "login",
        json!({
            "error": error,
            "username": username,
            "max_chars": MAX_NAME_CHARS,
            "csrf": form_token,
            "session_csrf": session_token,
        }),
    )
}

/// The token for a page's own form, and the session's for its header (the same one when there
/// is a session): one hash, not two.
pub(super) fn form_tokens(csrf: &CsrfToken<'_>) -> (String, Option<String>) {
    let session_token = csrf.for_session();
    let form_token = match &session_token {
        Some(token) => token.clone(),
        None => csrf.value(),
    };
    (form_token, session_token)
}
