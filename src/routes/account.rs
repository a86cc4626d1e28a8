//! The walkthrough's sixth step, "Real accounts": register, sign in with a password (throttled),
//! see where you are signed in and sign out any of it, and change your password. Every form
//! carries the CSRF token, every page is `no-store` (it uses the session), and the messages
//! after each action are flash messages kept in the session.

use std::net::IpAddr;

use rocket::form::{Errors, Form, FromForm};
use rocket::http::{Header, Status};
use rocket::response::Redirect;
use rocket::{Either, Responder, Route, State, get, post, routes};
use serde_json::{Value, json};

use super::keys::ACCOUNT_NAME;
use crate::accounts::password::{self, Verified};
use crate::accounts::throttle::Scopes;
use crate::accounts::{self, Account, RegisterError, Throttle};
use crate::error::AppError;
use crate::flash::{self, Kind};
use crate::name::{MAX_NAME_CHARS, Name};
use crate::templates::Page;
use latch::{Client, CsrfToken, Database, Handle, Session, SignIn, now_ms};

pub fn routes() -> Vec<Route> {
    routes![
        register_form,
        register,
        login_form,
        login,
        logout,
        sessions,
        revoke,
        revoke_others,
        password_form,
        change_password
    ]
}

/// What the forms that check a password answer: a redirect, a page with a status, or 429.
type Answer = Result<Either<Either<Redirect, (Status, Page)>, TooManyAttempts>, AppError>;

/// 429 with the seconds to wait, after too many failed sign-ins.
#[derive(Responder)]
#[response(status = 429)]
struct TooManyAttempts {
    page: Page,
    retry_after: Header<'static>,
}

impl TooManyAttempts {
    fn after(seconds: u64, page: Page) -> Self {
        Self {
            page,
            retry_after: Header::new("Retry-After", seconds.to_string()),
        }
    }
}

#[derive(FromForm)]
struct Credentials<'r> {
    csrf_token: Option<&'r str>,
    username: Option<&'r str>,
    password: Option<&'r str>,
}

#[derive(FromForm)]
struct HandleForm<'r> {
    csrf_token: Option<&'r str>,
    handle: Option<&'r str>,
}

#[derive(FromForm)]
struct TokenOnly<'r> {
    csrf_token: Option<&'r str>,
}

#[derive(FromForm)]
struct PasswordChange<'r> {
    csrf_token: Option<&'r str>,
    current_password: Option<&'r str>,
    new_password: Option<&'r str>,
}

#[get("/register")]
async fn register_form(session: Session<'_>, csrf: CsrfToken<'_>) -> Result<Page, AppError> {
    form_page("account_register", &session, &csrf, None, "").await
}

/// Creates an account and signs this session in to it. Registrations are limited per client
/// address, as each one costs a password hash.
#[post("/register", data = "<form>")]
async fn register(
    form: Result<Form<Credentials<'_>>, Errors<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
    client: Client,
    address: Option<IpAddr>,
    database: &State<Database>,
    throttle: &State<Throttle>,
) -> Answer {
    let form = form.map_err(|errors| super::pages::form_error(&errors))?;
    csrf.verify(form.csrf_token)?;
    let typed = form.username.unwrap_or_default();
    let now = now_ms();
    if let Some(seconds) = throttle
        .registration_retry_after(database, address, now)
        .await?
    {
        let message =
            format!("Too many new accounts from your network. Try again in {seconds} seconds.");
        return Ok(Either::Right(TooManyAttempts::after(
            seconds,
            form_page("account_register", &session, &csrf, Some(&message), typed).await?,
        )));
    }
    // Counted before the hash is made: the hash is what a flood of registrations would cost.
    throttle.record_registration(database, address, now).await?;
    let account = match create_account(database, typed, form.password.unwrap_or_default()).await? {
        Ok(account) => account,
        Err(problem) => {
            let page =
                form_page("account_register", &session, &csrf, Some(&problem), typed).await?;
            return Ok(Either::Left(Either::Right((
                Status::UnprocessableEntity,
                page,
            ))));
        }
    };
    sign_in(&session, &account, client).await?;
    let welcome = format!(
        "Welcome, {}: your account is ready and you are signed in.",
        account.username
    );
    flash::push(&session, Kind::Success, welcome).await?;
    Ok(Either::Left(Either::Left(Redirect::to(
        "/account/sessions",
    ))))
}

/// Checks the username and password and stores the account; `Ok(Err(sentence))` for what the
/// person should fix.
async fn create_account(
    database: &Database,
    username: &str,
    password: &str,
) -> Result<Result<Account, String>, AppError> {
    let username = match Name::parse(username) {
        Ok(name) => name.into_string(),
        Err(error) => return Ok(Err(format!("Invalid username: {error}."))),
    };
    if let Err(problem) = password::check(password) {
        return Ok(Err(problem));
    }
    let hash = hash_off_thread(password.to_owned()).await?;
    match accounts::register(database, &username, &hash, now_ms()).await {
        Ok(account) => Ok(Ok(account)),
        Err(RegisterError::Taken) => Ok(Err("That username is taken.".into())),
        Err(RegisterError::Database(error)) => Err(error.into()),
    }
}

#[get("/login")]
async fn login_form(session: Session<'_>, csrf: CsrfToken<'_>) -> Result<Page, AppError> {
    form_page("account_login", &session, &csrf, None, "").await
}

/// Signs in with a username and password. A wrong password and an unknown username get the same
/// answer after the same work; past the failure limits the answer is 429 without a check.
#[post("/login", data = "<form>")]
async fn login(
    form: Result<Form<Credentials<'_>>, Errors<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
    client: Client,
    address: Option<IpAddr>,
    database: &State<Database>,
    throttle: &State<Throttle>,
) -> Answer {
    let form = form.map_err(|errors| super::pages::form_error(&errors))?;
    csrf.verify(form.csrf_token)?;
    let username = form.username.unwrap_or_default();
    let scopes = Scopes::new(username, address);
    let now = now_ms();
    if let Some(seconds) = throttle.retry_after(database, &scopes, now).await? {
        let message = format!("Too many failed sign-ins. Try again in {seconds} seconds.");
        return Ok(Either::Right(TooManyAttempts::after(
            seconds,
            form_page("account_login", &session, &csrf, Some(&message), username).await?,
        )));
    }
    let account = accounts::find_by_username(database, username).await?;
    let stored = account
        .as_ref()
        .map(|account| account.password_hash.clone());
    let verified = verify_off_thread(form.password.unwrap_or_default().to_owned(), stored).await?;
    let Some(account) = account.filter(|_| verified != Verified::No) else {
        throttle.record_failure(database, &scopes, now).await?;
        let message = "Wrong username or password.";
        let page = form_page("account_login", &session, &csrf, Some(message), username).await?;
        return Ok(Either::Left(Either::Right((Status::Unauthorized, page))));
    };
    throttle.clear_user(database, &scopes).await?;
    if verified == Verified::YesRehash {
        let hash = hash_off_thread(form.password.unwrap_or_default().to_owned()).await?;
        accounts::set_password_hash(database, account.id, &hash).await?;
    }
    sign_in(&session, &account, client).await?;
    flash::push(
        &session,
        Kind::Success,
        format!("Signed in as {}.", account.username),
    )
    .await?;
    Ok(Either::Left(Either::Left(Redirect::to(
        "/account/sessions",
    ))))
}

/// Signs this session out; the browser keeps a fresh, anonymous session for the message.
#[post("/logout", data = "<form>")]
async fn logout(
    form: Result<Form<TokenOnly<'_>>, Errors<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
) -> Result<Redirect, AppError> {
    let form = form.map_err(|errors| super::pages::form_error(&errors))?;
    csrf.verify(form.csrf_token)?;
    if session.user().await?.is_some() {
        session.sign_out().await?;
        flash::push(&session, Kind::Success, "You are signed out.").await?;
    }
    Ok(Redirect::to("/account/login"))
}

/// Where this account is signed in, with a button to sign out each other device and one for
/// all of them.
#[get("/sessions")]
async fn sessions(
    session: Session<'_>,
    csrf: CsrfToken<'_>,
) -> Result<Either<Redirect, Page>, AppError> {
    if session.user().await?.is_none() {
        return Ok(Either::Left(Redirect::to("/account/login")));
    }
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
    let page = render(
        "account_sessions",
        &session,
        &csrf,
        json!({ "devices": devices }),
    )
    .await?;
    Ok(Either::Right(page))
}

/// Signs out the device with this handle (only ever one of this account's).
#[post("/sessions/revoke", data = "<form>")]
async fn revoke(
    form: Result<Form<HandleForm<'_>>, Errors<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
) -> Result<Redirect, AppError> {
    let form = form.map_err(|errors| super::pages::form_error(&errors))?;
    csrf.verify(form.csrf_token)?;
    if session.user().await?.is_none() {
        return Ok(Redirect::to("/account/login"));
    }
    let Some(handle) = form.handle.and_then(Handle::parse) else {
        return Err(AppError::BadRequest(
            "that is not a device of this list".into(),
        ));
    };
    let revoked = session.revoke_device(&handle).await?;
    if session.user().await?.is_none() {
        // It was this device.
        return Ok(Redirect::to("/account/login"));
    }
    let message = if revoked {
        (Kind::Success, "That device is signed out.")
    } else {
        (Kind::Error, "That device was already signed out.")
    };
    flash::push(&session, message.0, message.1).await?;
    Ok(Redirect::to("/account/sessions"))
}

/// Signs out every other device of this account.
#[post("/sessions/revoke-others", data = "<form>")]
async fn revoke_others(
    form: Result<Form<TokenOnly<'_>>, Errors<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
) -> Result<Redirect, AppError> {
    let form = form.map_err(|errors| super::pages::form_error(&errors))?;
    csrf.verify(form.csrf_token)?;
    if session.user().await?.is_none() {
        return Ok(Redirect::to("/account/login"));
    }
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
    Ok(Redirect::to("/account/sessions"))
}

#[get("/password")]
async fn password_form(
    session: Session<'_>,
    csrf: CsrfToken<'_>,
) -> Result<Either<Redirect, Page>, AppError> {
    if session.user().await?.is_none() {
        return Ok(Either::Left(Redirect::to("/account/login")));
    }
    let page = render("account_password", &session, &csrf, json!({})).await?;
    Ok(Either::Right(page))
}

/// Changes the password (the current one is needed) and signs out every other session.
#[post("/password", data = "<form>")]
async fn change_password(
    form: Result<Form<PasswordChange<'_>>, Errors<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
    address: Option<IpAddr>,
    database: &State<Database>,
    throttle: &State<Throttle>,
) -> Answer {
    let form = form.map_err(|errors| super::pages::form_error(&errors))?;
    csrf.verify(form.csrf_token)?;
    let Some(user) = session.user().await? else {
        return Ok(Either::Left(Either::Left(Redirect::to("/account/login"))));
    };
    let account = user
        .user_id
        .parse()
        .ok()
        .map(|id| accounts::find_by_id(database, id));
    let account = match account {
        Some(found) => found.await?,
        None => None,
    };
    let Some(account) = account else {
        // The account is gone: nothing to change, and this session should not stay signed in.
        session.sign_out().await?;
        return Ok(Either::Left(Either::Left(Redirect::to("/account/login"))));
    };
    let scopes = Scopes::new(&account.username, address);
    let now = now_ms();
    if let Some(seconds) = throttle.retry_after(database, &scopes, now).await? {
        let message = format!("Too many failed attempts. Try again in {seconds} seconds.");
        let page = render(
            "account_password",
            &session,
            &csrf,
            json!({ "error": message }),
        )
        .await?;
        return Ok(Either::Right(TooManyAttempts::after(seconds, page)));
    }
    let current = form.current_password.unwrap_or_default().to_owned();
    let problem =
        if verify_off_thread(current, Some(account.password_hash.clone())).await? == Verified::No {
            throttle.record_failure(database, &scopes, now).await?;
            Some((
                Status::Unauthorized,
                "Your current password is not right.".to_owned(),
            ))
        } else {
            password::check(form.new_password.unwrap_or_default())
                .err()
                .map(|problem| (Status::UnprocessableEntity, problem))
        };
    if let Some((status, message)) = problem {
        let context = json!({ "error": message });
        let page = render("account_password", &session, &csrf, context).await?;
        return Ok(Either::Left(Either::Right((status, page))));
    }
    let new_password = form.new_password.unwrap_or_default();
    let hash = hash_off_thread(new_password.to_owned()).await?;
    accounts::set_password_hash(database, account.id, &hash).await?;
    let ended = session.bump_auth_epoch().await?;
    let message = format!(
        "Password changed. {ended} other {} signed out.",
        if ended == 1 {
            "session was"
        } else {
            "sessions were"
        }
    );
    flash::push(&session, Kind::Success, message).await?;
    Ok(Either::Left(Either::Left(Redirect::to(
        "/account/sessions",
    ))))
}

/// Signs `session` in to `account`, keeping the anonymous data, and keeps the username for the
/// header (so showing it costs no query).
async fn sign_in(session: &Session<'_>, account: &Account, client: Client) -> Result<(), AppError> {
    session
        .sign_in(SignIn::new(account.user_id()).client(client))
        .await?;
    session.insert(&ACCOUNT_NAME, &account.username).await?;
    Ok(())
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

/// [`password::hash`], on a blocking thread: it takes tens of milliseconds of CPU.
async fn hash_off_thread(password: String) -> Result<String, AppError> {
    rocket::tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|error| AppError::Internal(error.to_string()))?
        .map_err(|error| AppError::Internal(error.to_string()))
}

/// [`password::verify`], on a blocking thread.
async fn verify_off_thread(password: String, stored: Option<String>) -> Result<Verified, AppError> {
    rocket::tokio::task::spawn_blocking(move || password::verify(&password, stored.as_deref()))
        .await
        .map_err(|error| AppError::Internal(error.to_string()))
}
