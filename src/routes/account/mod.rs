//! The walkthrough's sixth step, "Real accounts": register, sign in with a password (throttled),
//! see where you are signed in and sign out any of it, and change your password. Every form
//! carries the CSRF token, every page is `no-store` (it uses the session), and the messages
//! after each action are flash messages kept in the session.

mod devices;
mod login;
mod password;
mod register;

// The handlers are in one file per page; what they share is here.

use rocket::form::FromForm;
use rocket::http::Header;
use rocket::response::Redirect;
use rocket::{Responder, Route, routes, uri};
use serde_json::{Value, json};

use super::keys::ACCOUNT_NAME;
use crate::accounts::Account;
use crate::error::AppError;
use crate::flash::{self, Kind};
use crate::name::MAX_NAME_CHARS;
use crate::templates::Page;
use latch::{
    ClientInfo, CsrfForm, CsrfFormError, CsrfToken, NoFields, Session, SessionError, SignIn,
};

pub fn routes() -> Vec<Route> {
    routes![
        register::register_form,
        register::register,
        login::login_form,
        login::login,
        login::logout,
        login::logout_signed_out,
        devices::sessions,
        devices::sessions_signed_out,
        devices::revoke,
        devices::revoke_others,
        devices::revoke_signed_out,
        devices::revoke_others_signed_out,
        password::password_form,
        password::password_form_signed_out,
        password::change_password,
        password::change_password_signed_out,
    ]
}

/// What the forms that check a password answer.
#[derive(Responder)]
enum Answer {
    /// It is done: on to the page that shows the outcome (303).
    Done(Redirect),
    /// The form again, saying what to fix; nothing was stored.
    #[response(status = 422)]
    Invalid(Page),
    /// The form again: the username or the password is wrong.
    #[response(status = 401)]
    WrongCredentials(Page),
    /// The form again, past a throttle's budget: no password was checked, and `Retry-After`
    /// says how many seconds to wait.
    #[response(status = 429)]
    TooManyAttempts(Page, Header<'static>),
}

impl Answer {
    fn too_many_attempts(retry_after: u64, page: Page) -> Self {
        Self::TooManyAttempts(page, Header::new("Retry-After", retry_after.to_string()))
    }
}

/// The fields of the registration and sign-in forms.
#[derive(FromForm)]
struct Credentials<'r> {
    username: Option<&'r str>,
    password: Option<&'r str>,
}

/// Where a signed-out visitor goes from a page of a signed-in account, and where signing out
/// leads.
fn to_sign_in() -> Redirect {
    Redirect::to(uri!("/account", login::login_form))
}

/// Where a form of a signed-in account leads once it is done: the device list, which shows
/// the flash message.
fn to_devices() -> Redirect {
    Redirect::to(uri!("/account", devices::sessions))
}

/// What a signed-out visitor gets from a form of a signed-in account: the form's refusal
/// (a missing or wrong token) as when signed in, else the sign-in page. Nothing changes.
fn signed_out_form(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
) -> Result<Redirect, AppError> {
    form.map_err(super::pages::refused)?;
    Ok(to_sign_in())
}

/// Signs `session` in to `account`, keeping the anonymous data, keeps the username for the
/// header (so showing it costs no query) and leaves `welcome` as a flash message. All or
/// nothing: if any step fails (the session's data cap, say), the session is signed out again.
async fn sign_in(
    session: &Session<'_>,
    account: &Account,
    client: ClientInfo,
    welcome: String,
) -> Result<(), AppError> {
    session
        .sign_in(SignIn::new(account.user_id()).client(client))
        .await?;
    let finished = async {
        session.insert(&ACCOUNT_NAME, &account.username).await?;
        flash::push(session, Kind::Success, welcome).await
    };
    if let Err(error) = finished.await {
        sign_out_if_live(session).await?;
        return Err(error.into());
    }
    Ok(())
}

/// Signs `session` out; one that ended meanwhile (a password change elsewhere ended it) is
/// signed out already.
async fn sign_out_if_live(session: &Session<'_>) -> Result<(), AppError> {
    match session.sign_out().await {
        Ok(()) | Err(SessionError::Ended) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// A page of this step with its form token, the session's token for the header, the flash
/// messages, and `extra`.
async fn render(
    template: &'static str,
    session: &Session<'_>,
    csrf: &CsrfToken<'_>,
    mut extra: Value,
) -> Result<Page, AppError> {
    let (form_token, session_token) = super::pages::form_tokens(csrf);
    let flashes = flash::take(session).await?;
    let account = session.get(&ACCOUNT_NAME).await?;
    if let Value::Object(fields) = &mut extra {
        fields.insert("csrf".into(), json!(form_token));
        fields.insert("session_csrf".into(), json!(session_token));
        fields.insert("flashes".into(), json!(flashes));
        fields.insert("account".into(), json!(account));
        fields.insert("max_chars".into(), json!(MAX_NAME_CHARS));
    }
    Ok(Page::render(template, extra))
}

/// A form page of this step: `error` above the form, and the `username` typed kept in it.
async fn form_page(
    template: &'static str,
    session: &Session<'_>,
    csrf: &CsrfToken<'_>,
    error: Option<&str>,
    username: &str,
) -> Result<Page, AppError> {
    render(
        template,
        session,
        csrf,
        json!({ "error": error, "username": username }),
    )
    .await
}
