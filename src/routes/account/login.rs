//! Signing in with a password (`/account/login`, throttled) and out (`POST /account/logout`).

use std::net::IpAddr;

use rocket::response::Redirect;
use rocket::{State, get, post};

use super::{
    Answer, Credentials, form_page, sign_in, sign_out_if_live, signed_out_form, to_devices,
    to_sign_in,
};
use crate::accounts::password::{self, Verified};
use crate::accounts::throttle::Claimed;
use crate::accounts::{self, HashSlots, Throttle, Username};
use crate::error::AppError;
use crate::flash::{self, Kind};
use crate::routes::pages::refused;
use crate::signed_in::SignedInUser;
use crate::templates::Page;
use latch::{ClientInfo, CsrfForm, CsrfFormError, CsrfToken, Database, NoFields, Session};

#[get("/login")]
pub(super) async fn login_form(
    session: Session<'_>,
    csrf: CsrfToken<'_>,
) -> Result<Page, AppError> {
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
pub(super) async fn login(
    form: Result<CsrfForm<Credentials<'_>>, CsrfFormError<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
    client: ClientInfo,
    address: Option<IpAddr>,
    database: &State<Database>,
    throttle: &State<Throttle>,
    hashing: &State<HashSlots>,
) -> Result<Answer, AppError> {
    let form = form.map_err(refused)?;
    let typed = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    // Checked before any query sees them: input that breaks the registration rules names no
    // account, and is counted against the client's network alone.
    let username = Username::parse(typed)
        .ok()
        .filter(|_| password::check(password).is_ok());
    let budgets = throttle.sign_in(username.as_ref(), address);
    let claim = match throttle
        .claim(database, &budgets, crate::clock::now_ms())
        .await?
    {
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
    throttle
        .succeeded(database, claim, &username, address)
        .await?;
    Ok(Answer::Done(to_devices()))
}

/// Signs this session out; the browser keeps a fresh, anonymous session for the message.
#[post("/logout", data = "<form>")]
pub(super) async fn logout(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
    session: Session<'_>,
    _user: SignedInUser,
) -> Result<Redirect, AppError> {
    form.map_err(refused)?;
    session.sign_out().await?;
    flash::push(&session, Kind::Success, "You are signed out.").await?;
    Ok(to_sign_in())
}

/// Signed out already: nothing to do but check the form, and go to the sign-in page.
#[post("/logout", data = "<form>", rank = 2)]
pub(super) fn logout_signed_out(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
) -> Result<Redirect, AppError> {
    signed_out_form(form)
}
