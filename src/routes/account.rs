//! The walkthrough's sixth step, "Real accounts": register, sign in with a password (throttled),
//! see where you are signed in and sign out any of it, and change your password. Every form
//! carries the CSRF token, every page is `no-store` (it uses the session), and the messages
//! after each action are flash messages kept in the session.

use std::net::IpAddr;

use rocket::form::FromForm;
use rocket::http::Header;
use rocket::response::Redirect;
use rocket::{Responder, Route, State, get, post, routes, uri};
use serde_json::{Value, json};

use super::keys::ACCOUNT_NAME;
use crate::accounts::password::{self, Verified};
use crate::accounts::throttle::Claimed;
use crate::accounts::{self, Account, HashSlots, RegisterError, Throttle, Username};
use crate::error::AppError;
use crate::flash::{self, Kind};
use crate::name::MAX_NAME_CHARS;
use crate::signed_in::SignedInUser;
use crate::templates::Page;
use latch::{
    ClientInfo, CsrfForm, CsrfFormError, CsrfToken, Database, Handle, NoFields, Session,
    SessionError, SignIn, now_ms,
};

pub fn routes() -> Vec<Route> {
    routes![
        register_form,
        register,
        login_form,
        login,
        logout,
        logout_signed_out,
        sessions,
        sessions_signed_out,
        revoke,
        revoke_others,
        revoke_signed_out,
        revoke_others_signed_out,
        password_form,
        password_form_signed_out,
        change_password,
        change_password_signed_out,
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

#[derive(FromForm)]
struct Credentials<'r> {
    username: Option<&'r str>,
    password: Option<&'r str>,
}

#[derive(FromForm)]
struct HandleForm<'r> {
    handle: Option<&'r str>,
}

#[derive(FromForm)]
struct PasswordChange<'r> {
    current_password: Option<&'r str>,
    new_password: Option<&'r str>,
}

#[get("/register")]
async fn register_form(session: Session<'_>, csrf: CsrfToken<'_>) -> Result<Page, AppError> {
    form_page("account_register", &session, &csrf, None, "").await
}

/// Creates an account and signs this session in to it, or, if that cannot finish, leaves no
/// account behind. Registrations are limited per client network, as each costs a password hash.
#[post("/register", data = "<form>")]
#[expect(
    clippy::too_many_arguments,
    reason = "one request guard per thing the handler uses"
)]
async fn register(
    form: Result<CsrfForm<Credentials<'_>>, CsrfFormError<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
    client: ClientInfo,
    address: Option<IpAddr>,
    database: &State<Database>,
    throttle: &State<Throttle>,
    hashing: &State<HashSlots>,
) -> Result<Answer, AppError> {
    let form = form.map_err(super::pages::refused)?;
    let typed = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let refuse = async |problem: String| -> Result<Answer, AppError> {
        let page = form_page("account_register", &session, &csrf, Some(&problem), typed).await?;
        Ok(Answer::Invalid(page))
    };
    let username = match Username::parse(typed) {
        Ok(username) => username,
        Err(error) => return refuse(format!("Invalid username: {error}.")).await,
    };
    if let Err(problem) = password::check(password) {
        return refuse(problem).await;
    }
    let budgets = throttle.registration(address);
    let claim = match throttle.claim(database, &budgets, now_ms()).await? {
        Claimed::Granted(claim) => claim,
        Claimed::Refused { retry_after } => {
            let message = format!(
                "Too many new accounts from your network. Try again in {retry_after} seconds."
            );
            let page = form_page("account_register", &session, &csrf, Some(&message), typed);
            return Ok(Answer::too_many_attempts(retry_after, page.await?));
        }
    };
    // Asked before the hash is spent (the insert below still decides a race), and counted:
    // uncounted, it would answer "is this username taken?" without limit.
    if accounts::is_taken(database, &username).await? {
        return refuse(TAKEN.into()).await;
    }
    let hashed = {
        let password = password.to_owned();
        hashing.run(move || password::hash(&password)).await
    };
    let hash = match hashed {
        Ok(hash) => hash.map_err(|error| AppError::Internal(error.to_string()))?,
        Err(busy) => {
            // Nothing was hashed: the place goes back.
            throttle.release(database, claim).await?;
            return Err(busy.into());
        }
    };
    let account = match accounts::register(database, &username, &hash, now_ms()).await {
        Ok(account) => account,
        Err(RegisterError::Taken) => return refuse(TAKEN.into()).await,
        Err(RegisterError::Database(error)) => return Err(error.into()),
    };
    let welcome = format!(
        "Welcome, {}: your account is ready and you are signed in.",
        account.username
    );
    if let Err(error) = sign_in(&session, &account, client, welcome).await {
        // All or nothing: an account nobody was told about must not exist.
        accounts::delete(database, account.id).await?;
        return Err(error);
    }
    Ok(Answer::Done(to_devices()))
}

/// What a refused registration says when the name, or one that looks like it, is in use.
const TAKEN: &str = "That username is taken (or looks the same as one that is).";

#[get("/login")]
async fn login_form(session: Session<'_>, csrf: CsrfToken<'_>) -> Result<Page, AppError> {
    form_page("account_login", &session, &csrf, None, "").await
}

/// Signs in with a username and password. The attempt claims its place in the throttle's
/// budgets before anything else; a wrong password, an unknown username and input no account
/// could have all get the same 401, and past a budget the answer is 429 without a check.
#[post("/login", data = "<form>")]
#[expect(
    clippy::too_many_arguments,
    reason = "one request guard per thing the handler uses"
)]
async fn login(
    form: Result<CsrfForm<Credentials<'_>>, CsrfFormError<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
    client: ClientInfo,
    address: Option<IpAddr>,
    database: &State<Database>,
    throttle: &State<Throttle>,
    hashing: &State<HashSlots>,
) -> Result<Answer, AppError> {
    let form = form.map_err(super::pages::refused)?;
    let typed = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    // Checked before any query sees them: input that breaks the registration rules names no
    // account, and is counted against the client's network alone.
    let username = Username::parse(typed)
        .ok()
        .filter(|_| password::check(password).is_ok());
    let budgets = throttle.sign_in(username.as_ref(), address);
    let claim = match throttle.claim(database, &budgets, now_ms()).await? {
        Claimed::Granted(claim) => claim,
        Claimed::Refused { retry_after } => {
            let message = format!("Too many failed sign-ins. Try again in {retry_after} seconds.");
            let page = form_page("account_login", &session, &csrf, Some(&message), typed);
            return Ok(Answer::too_many_attempts(retry_after, page.await?));
        }
    };
    let wrong = async || -> Result<Answer, AppError> {
        let message = "Wrong username or password.";
        let page = form_page("account_login", &session, &csrf, Some(message), typed).await?;
        Ok(Answer::WrongCredentials(page))
    };
    let Some(username) = username else {
        return wrong().await;
    };
    let account = accounts::find_by_username(database, &username).await?;
    let stored = account
        .as_ref()
        .map(|account| account.password_hash.clone());
    let verified = {
        let (password, stored) = (password.to_owned(), stored.clone());
        hashing
            .run(move || password::verify(&password, stored.as_deref()))
            .await
    };
    let verified = match verified {
        Ok(verified) => verified,
        Err(busy) => {
            throttle.release(database, claim).await?;
            return Err(busy.into());
        }
    };
    let (Some(account), Some(stored)) = (account, stored) else {
        return wrong().await;
    };
    // The hash this sign-in stands on: the one checked, or its replacement if that was stored
    // in its place. A hash that changed meanwhile (a password change) makes this a failure.
    let current = match verified {
        Verified::No => return wrong().await,
        Verified::Yes => stored,
        Verified::YesRehashed(rehashed) => {
            if !accounts::replace_password_hash(database, account.id, &stored, &rehashed).await? {
                return wrong().await;
            }
            rehashed
        }
    };
    sign_in(
        &session,
        &account,
        client,
        format!("Signed in as {}.", account.username),
    )
    .await?;
    // A password change that landed after the check but before this session existed did not
    // end it: its hash is no longer the one checked, so sign out again. (One that lands after
    // this read ends the session itself, as it ends every older one.)
    if accounts::password_hash(database, account.id)
        .await?
        .as_deref()
        != Some(&current)
    {
        sign_out_if_live(&session).await?;
        return wrong().await;
    }
    throttle.release(database, claim).await?;
    throttle.forgive(database, &username, address).await?;
    Ok(Answer::Done(to_devices()))
}

/// Signs this session out; the browser keeps a fresh, anonymous session for the message.
#[post("/logout", data = "<form>")]
async fn logout(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
    session: Session<'_>,
    _user: SignedInUser,
) -> Result<Redirect, AppError> {
    form.map_err(super::pages::refused)?;
    session.sign_out().await?;
    flash::push(&session, Kind::Success, "You are signed out.").await?;
    Ok(to_sign_in())
}

/// Signed out already: nothing to do but check the form, and go to the sign-in page.
#[post("/logout", data = "<form>", rank = 2)]
fn logout_signed_out(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
) -> Result<Redirect, AppError> {
    signed_out_form(form)
}

/// Where this account is signed in, with a button to sign out each other device and one for
/// all of them.
#[get("/sessions")]
async fn sessions(
    session: Session<'_>,
    csrf: CsrfToken<'_>,
    _user: SignedInUser,
) -> Result<Page, AppError> {
    let devices: Vec<Value> = session
        .devices()
        .await?
        .into_iter()
        .map(|device| {
            json!({
                "handle": device.handle.encode(),
                "current": device.current,
                "signed_in": utc(device.signed_in_at),
                "last_seen": utc(device.last_seen),
                "browser": device.client.user_agent.unwrap_or_else(|| "unknown browser".into()),
                "address": device.client.address.unwrap_or_else(|| "unknown address".into()),
            })
        })
        .collect();
    render(
        "account_sessions",
        &session,
        &csrf,
        json!({ "devices": devices }),
    )
    .await
}

#[get("/sessions", rank = 2)]
fn sessions_signed_out() -> Redirect {
    to_sign_in()
}

/// Signs out the device with this handle (only ever one of this account's).
#[post("/sessions/revoke", data = "<form>")]
async fn revoke(
    form: Result<CsrfForm<HandleForm<'_>>, CsrfFormError<'_>>,
    session: Session<'_>,
    user: SignedInUser,
) -> Result<Redirect, AppError> {
    let form = form.map_err(super::pages::refused)?;
    let Some(handle) = form.handle.and_then(Handle::parse) else {
        return Err(AppError::BadRequest(
            "that is not a device of this list".into(),
        ));
    };
    let revoked = session.revoke_device(&handle).await?;
    if handle == user.handle {
        // This device signed itself out.
        return Ok(to_sign_in());
    }
    let message = if revoked {
        (Kind::Success, "That device is signed out.")
    } else {
        (Kind::Error, "That device was already signed out.")
    };
    flash::push(&session, message.0, message.1).await?;
    Ok(to_devices())
}

/// Signs out every other device of this account.
#[post("/sessions/revoke-others", data = "<form>")]
async fn revoke_others(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
    session: Session<'_>,
    _user: SignedInUser,
) -> Result<Redirect, AppError> {
    form.map_err(super::pages::refused)?;
    let ended = session.revoke_other_devices().await?;
    flash::push(
        &session,
        Kind::Success,
        format!(
            "Signed out everywhere else ({ended} {}).",
            plural(ended, "session")
        ),
    )
    .await?;
    Ok(to_devices())
}

#[post("/sessions/revoke", data = "<form>", rank = 2)]
fn revoke_signed_out(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
) -> Result<Redirect, AppError> {
    signed_out_form(form)
}

#[post("/sessions/revoke-others", data = "<form>", rank = 2)]
fn revoke_others_signed_out(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
) -> Result<Redirect, AppError> {
    signed_out_form(form)
}

#[get("/password")]
async fn password_form(
    session: Session<'_>,
    csrf: CsrfToken<'_>,
    _user: SignedInUser,
) -> Result<Page, AppError> {
    render("account_password", &session, &csrf, json!({})).await
}

#[get("/password", rank = 2)]
fn password_form_signed_out() -> Redirect {
    to_sign_in()
}

/// Changes the password (the current one is needed) and signs out every other session. Its
/// throttle counts only this account's own failed checks here, so strangers' failed sign-ins
/// never stand in the owner's way.
#[post("/password", data = "<form>")]
async fn change_password(
    form: Result<CsrfForm<PasswordChange<'_>>, CsrfFormError<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
    user: SignedInUser,
    database: &State<Database>,
    throttle: &State<Throttle>,
    hashing: &State<HashSlots>,
) -> Result<Answer, AppError> {
    let form = form.map_err(super::pages::refused)?;
    let Some(account) = accounts::find_by_public_id(database, &user.user_id).await? else {
        // The account is gone: nothing to change, and this session should not stay signed in.
        session.sign_out().await?;
        return Ok(Answer::Done(to_sign_in()));
    };
    let refuse = async |answer: fn(Page) -> Answer, message: &str| -> Result<Answer, AppError> {
        let context = json!({ "error": message });
        let page = render("account_password", &session, &csrf, context).await?;
        Ok(answer(page))
    };
    let new_password = form.new_password.unwrap_or_default().to_owned();
    if let Err(problem) = password::check(&new_password) {
        return refuse(Answer::Invalid, &problem).await;
    }
    let budgets = throttle.password_change(account.user_id());
    let claim = match throttle.claim(database, &budgets, now_ms()).await? {
        Claimed::Granted(claim) => claim,
        Claimed::Refused { retry_after } => {
            let message = format!("Too many failed attempts. Try again in {retry_after} seconds.");
            let context = json!({ "error": message });
            let page = render("account_password", &session, &csrf, context).await?;
            return Ok(Answer::too_many_attempts(retry_after, page));
        }
    };
    let current = form.current_password.unwrap_or_default().to_owned();
    let stored = account.password_hash.clone();
    // The check and the new hash in one slot.
    let checked = hashing
        .run(move || match password::verify(&current, Some(&stored)) {
            Verified::No => None,
            Verified::Yes | Verified::YesRehashed(_) => Some(password::hash(&new_password)),
        })
        .await;
    let new_hash = match checked {
        Ok(Some(hash)) => hash.map_err(|error| AppError::Internal(error.to_string()))?,
        Ok(None) => {
            return refuse(
                Answer::WrongCredentials,
                "Your current password is not right.",
            )
            .await;
        }
        Err(busy) => {
            throttle.release(database, claim).await?;
            return Err(busy.into());
        }
    };
    // Only over the hash just checked: if it changed meanwhile, the password given is no longer
    // the current one.
    if !accounts::replace_password_hash(database, account.id, &account.password_hash, &new_hash)
        .await?
    {
        return refuse(
            Answer::WrongCredentials,
            "Your current password is not right.",
        )
        .await;
    }
    let ended = session.bump_auth_epoch().await?;
    throttle.release(database, claim).await?;
    let message = format!(
        "Password changed. {ended} other {} signed out.",
        if ended == 1 {
            "session was"
        } else {
            "sessions were"
        }
    );
    flash::push(&session, Kind::Success, message).await?;
    Ok(Answer::Done(to_devices()))
}

#[post("/password", data = "<form>", rank = 2)]
fn change_password_signed_out(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
) -> Result<Redirect, AppError> {
    signed_out_form(form)
}

/// Where a signed-out visitor goes from a page of a signed-in account, and where signing out
/// leads.
fn to_sign_in() -> Redirect {
    Redirect::to(uri!("/account", login_form))
}

/// Where a form of a signed-in account leads once it is done: the device list, which shows
/// the flash message.
fn to_devices() -> Redirect {
    Redirect::to(uri!("/account", sessions))
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

/// A Unix-millisecond time as `{"date": "2026-11-30", "time": "21:04 UTC"}`.
fn utc(ms: i64) -> Value {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(at) => json!({
            "date": format!("{:04}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day()),
            "time": format!("{:02}:{:02} UTC", at.hour(), at.minute()),
        }),
        Err(_) => json!({ "date": "unknown", "time": "" }),
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        noun.to_owned()
    } else {
        format!("{noun}s")
    }
}
