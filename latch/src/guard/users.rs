//! Signing a session in and out, and what a signed-in session can do with its user's other
//! sessions: list them, sign out one, all others or all, and end every older one at once.

use super::{Active, DataMut, Rotation, Session, remove_cookie, set_cookie};
use crate::store::{Record, Rekeyed, SessionData};
use crate::user::{Device, Handle, MAX_USER_ID, Revoke, SignIn, SignedIn};
use crate::{IdHash, SessionError, SessionId};

impl Session<'_> {
    /// Who this session is signed in as, if anyone.
    ///
    /// # Errors
    ///
    /// [`SessionError::Unavailable`] (503) when the store cannot be reached while confirming a
    /// cached copy.
    pub async fn user(&self) -> Result<Option<SignedIn>, SessionError> {
        self.confirm().await?;
        Ok(self
            .cell
            .lock()
            .as_ref()
            .and_then(|active| active.record.user.clone()))
    }

    /// Signs this session in as `sign_in`'s user: in one step the session moves to a fresh ID
    /// (the old one is dead at once), keeps or clears its data as `sign_in` says, and records
    /// the user, a new [`Handle`], the time and the client. Without a session (or if it ended
    /// meanwhile), a new one starts signed in. The session is recorded under the user's current
    /// auth epoch (see [`bump_auth_epoch`](Self::bump_auth_epoch)).
    ///
    /// Call it only after the user proved who they are; it trusts the user id it is given.
    ///
    /// # Errors
    ///
    /// [`SessionError::InvalidUserId`] for an empty or over-long user id,
    /// [`SessionError::TooLarge`], or a store error; nothing changed then.
    pub async fn sign_in(&self, sign_in: SignIn) -> Result<(), SessionError> {
        self.sign_in_with(sign_in, |_| Ok(())).await
    }

    /// [`sign_in`](Self::sign_in), and `edit` applied to the session's data in the same write:
    /// the signed-in session shows the new data from its first moment, and a sign-in that
    /// fails stores neither. `edit` sees the data `sign_in` keeps (none after
    /// [`SignIn::clear_data`]) and runs again if another request changed the session first.
    /// Returns what `edit` returned.
    ///
    /// ```no_run
    /// use latch::{ClientInfo, Key, Session, SessionError, SignIn};
    ///
    /// const DISPLAY_NAME: Key<String> = Key::new("display_name");
    ///
    /// # async fn login(session: Session<'_>, client: ClientInfo) -> Result<(), SessionError> {
    /// // ... after checking the password of user 42:
    /// session
    ///     .sign_in_with(SignIn::new("42").client(client), |data| {
    ///         data.insert(&DISPLAY_NAME, &"Ada".to_owned())
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`sign_in`](Self::sign_in), and the error `edit` returned; nothing changed then.
    pub async fn sign_in_with<R>(
        &self,
        sign_in: SignIn,
        mut edit: impl FnMut(&mut DataMut<'_>) -> Result<R, SessionError> + Send,
    ) -> Result<R, SessionError> {
        if sign_in.user_id.is_empty() || sign_in.user_id.len() > MAX_USER_ID {
            return Err(SessionError::InvalidUserId);
        }
        let _serial = self.cell.writer.lock().await;
        let now = self.manager.now();
        let signed_in = SignedIn {
            user_id: sign_in.user_id,
            handle: Handle::generate(),
            signed_in_at: now,
            client: sign_in.client,
        };
        if let Some(active) = self.cell.snapshot() {
            let rotated = self
                .rotate_locked(active, Rotation::SignIn, |data, user| {
                    if !sign_in.keep_data {
                        data.clear();
                    }
                    *user = Some(signed_in.clone());
                    edit(&mut DataMut(data))
                })
                .await;
            match rotated {
                // It ended under this request: sign in on a new session instead.
                Err(SessionError::Ended) => {}
                other => return other,
            }
        }
        let mut data = SessionData::new();
        let outcome = edit(&mut DataMut(&mut data))?;
        self.check_size(&data)?;
        let record = Record {
            data,
            version: 0,
            created_at: now,
            expires_at: self.manager.deadline(now, now),
            user: Some(signed_in),
        };
        loop {
            let id = SessionId::generate();
            match self
                .manager
                .users()?
                .sign_in(None, &id.hash(), &record, now)
                .await?
            {
                Rekeyed::Done => {
                    set_cookie(self.manager, self.cookies, &id, record.expires_at, now);
                    self.cell.set(Some(Active {
                        id,
                        record,
                        new: true,
                        confirmed: true,
                    }));
                    return Ok(outcome);
                }
                // A new ID cannot be gone: only taken (astronomically unlikely). Draw again.
                Rekeyed::IdTaken | Rekeyed::Gone => {}
            }
        }
    }

    /// Signs this session out: it moves to a fresh ID with no data and no user, so nothing of
    /// the signed-in session outlives it, while the browser keeps a session (for a "signed out"
    /// message, say). Without a signed-in session, does nothing.
    ///
    /// # Errors
    ///
    /// [`SessionError::Ended`] if the session ended meanwhile, or a store error.
    pub async fn sign_out(&self) -> Result<(), SessionError> {
        let _serial = self.cell.writer.lock().await;
        self.confirm_locked().await?;
        let Some(active) = self
            .cell
            .snapshot()
            .filter(|active| active.record.user.is_some())
        else {
            return Ok(());
        };
        self.rotate_locked(active, Rotation::Rekey, |data, user| {
            data.clear();
            *user = None;
            Ok(())
        })
        .await
    }

    /// The live sessions of this session's user, in the order they signed in, this one marked
    /// [`current`](Device::current).
    ///
    /// # Errors
    ///
    /// [`SessionError::NotSignedIn`] (401) without a signed-in session, or a store error.
    pub async fn devices(&self) -> Result<Vec<Device>, SessionError> {
        let (user_id, current) = self.signed_in().await?;
        Ok(self
            .manager
            .users()?
            .user_sessions(&user_id, Some(&current), self.manager.now())
            .await?)
    }

    /// Signs out the user's session with this handle (this one included). Returns whether
    /// there was one: a handle of another user's session, or of one already gone, matches
    /// nothing.
    ///
    /// # Errors
    ///
    /// As [`devices`](Self::devices).
    pub async fn revoke_device(&self, handle: &Handle) -> Result<bool, SessionError> {
        Ok(self.revoke(Revoke::Handle(handle)).await? > 0)
    }

    /// Signs out every other session of this user, keeping this one. Returns how many ended.
    ///
    /// # Errors
    ///
    /// As [`devices`](Self::devices).
    pub async fn revoke_other_devices(&self) -> Result<usize, SessionError> {
        let (_, current) = self.signed_in().await?;
        self.revoke(Revoke::AllBut(&current)).await
    }

    /// Signs out every session of this user, this one too. Returns how many ended.
    ///
    /// # Errors
    ///
    /// As [`devices`](Self::devices).
    pub async fn revoke_all_devices(&self) -> Result<usize, SessionError> {
        self.revoke(Revoke::All).await
    }

    /// Moves the user's auth epoch forward, which ends every other session of theirs that
    /// signed in before, at once, while this one stays: what a password change does. Returns
    /// how many ended. A sign-in racing it either lands before (and is ended) or after (under
    /// the new epoch).
    ///
    /// # Errors
    ///
    /// As [`devices`](Self::devices).
    pub async fn bump_auth_epoch(&self) -> Result<usize, SessionError> {
        let (user_id, current) = self.signed_in().await?;
        let ended = self
            .manager
            .users()?
            .bump_auth_epoch(&user_id, Some(&current))
            .await?;
        Ok(ended.len())
    }

    /// Ends the sessions of this session's user that `which` names, forgetting this one if it
    /// is among them.
    async fn revoke(&self, which: Revoke<'_>) -> Result<usize, SessionError> {
        let (user_id, current) = self.signed_in().await?;
        let ended = self.manager.users()?.revoke(&user_id, which).await?;
        if ended.contains(&current) {
            let _serial = self.cell.writer.lock().await;
            self.cell.set(None);
            remove_cookie(self.manager, self.cookies);
        }
        Ok(ended.len())
    }

    /// This session's user id and ID hash, confirmed current.
    async fn signed_in(&self) -> Result<(String, IdHash), SessionError> {
        self.confirm().await?;
        let active = self.cell.lock();
        active
            .as_ref()
            .and_then(|active| {
                let user = active.record.user.as_ref()?;
                Some((user.user_id.clone(), active.id.hash()))
            })
            .ok_or(SessionError::NotSignedIn)
    }
}
