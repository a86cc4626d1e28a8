//! Registration: `GET` and `POST /account/register`, limited per client network.

use std::net::IpAddr;

use rocket::{State, get, post};

use super::{Answer, Credentials, form_page, sign_in, to_devices};
use crate::accounts::password;
use crate::accounts::throttle::Claimed;
use crate::accounts::{self, HashSlots, RegisterError, Throttle, Username};
use crate::error::AppError;
use crate::routes::pages::refused;
use crate::templates::Page;
use latch::{ClientInfo, CsrfForm, CsrfFormError, CsrfToken, Database, Session};

#[get("/register")]
pub(super) async fn register_form(
    session: Session<'_>,
    csrf: CsrfToken<'_>,
) -> Result<Page, AppError> {
    form_page("account_register", &session, &csrf, None, "").await
}

/// Creates an account and signs this session in to it, or, if that cannot finish, leaves no
/// account behind. Registrations are limited per client network, as each costs a password hash.
#[post("/register", data = "<form>")]
#[expect(
    clippy::too_many_arguments,
    reason = "one request guard per thing the handler uses"
)]
pub(super) async fn register(
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
    let claim = match throttle
        .claim(database, &budgets, crate::clock::now_ms())
        .await?
    {
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
    let account = match accounts::register(database, &username, &hash, crate::clock::now_ms()).await
    {
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
