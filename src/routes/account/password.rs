//! Changing the password, `/account/password`: the current one is needed, and every other
//! session of the account ends.

use rocket::form::FromForm;
use rocket::response::Redirect;
use rocket::{State, get, post};
use serde_json::json;

use super::{Answer, render, signed_out_form, to_devices, to_sign_in};
use crate::accounts::password::{self, Verified};
use crate::accounts::throttle::Claimed;
use crate::accounts::{self, HashSlots, Throttle};
use crate::error::AppError;
use crate::flash::{self, Kind};
use crate::routes::pages::refused;
use crate::signed_in::SignedInUser;
use crate::templates::Page;
use latch::{CsrfForm, CsrfFormError, CsrfToken, Database, NoFields, Session};

#[derive(FromForm)]
pub(super) struct PasswordChange<'r> {
    current_password: Option<&'r str>,
    new_password: Option<&'r str>,
}

#[get("/password")]
pub(super) async fn password_form(
    session: Session<'_>,
    csrf: CsrfToken<'_>,
    _user: SignedInUser,
) -> Result<Page, AppError> {
    render("account_password", &session, &csrf, json!({})).await
}

#[get("/password", rank = 2)]
pub(super) fn password_form_signed_out() -> Redirect {
    to_sign_in()
}

/// Changes the password (the current one is needed) and signs out every other session. Its
/// throttle counts only this account's own failed checks here, so strangers' failed sign-ins
/// never stand in the owner's way.
#[post("/password", data = "<form>")]
pub(super) async fn change_password(
    form: Result<CsrfForm<PasswordChange<'_>>, CsrfFormError<'_>>,
    csrf: CsrfToken<'_>,
    session: Session<'_>,
    user: SignedInUser,
    database: &State<Database>,
    throttle: &State<Throttle>,
    hashing: &State<HashSlots>,
) -> Result<Answer, AppError> {
    let form = form.map_err(refused)?;
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
    let claim = match throttle
        .claim(database, &budgets, crate::clock::now_ms())
        .await?
    {
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
pub(super) fn change_password_signed_out(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
) -> Result<Redirect, AppError> {
    signed_out_form(form)
}
