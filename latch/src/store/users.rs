//! The statements behind rekeys and the per-user operations (sign in, list, revoke, bump the
//! auth epoch): the same SQL on both backends, written once and compiled for each backend's
//! connection type.

use crate::Table;

/// Statement texts shared by both backends (`$n` is a numbered parameter in SQLite too).
mod sql {
    /// A user's live sessions. `$1` user id, `$2` the asking session's ID hash (or null), `$3`
    /// now.
    pub(super) const SESSIONS: &str = "
        select handle, signed_in_at, last_seen, user_agent, address, id_hash = $2 as current
        from sessions
        where user_id = $1 and expires_at > $3
        order by signed_in_at, handle";

    /// Deletes a user's sessions: `$1` user id, `$2` only this handle (or null), `$3` all but
    /// this ID hash (or null).
    pub(super) const REVOKE: &str = "
        delete from sessions
        where user_id = $1 and ($2 is null or handle = $2) and ($3 is null or id_hash <> $3)
        returning id_hash";

    /// Moves the user's auth epoch forward, creating the user's row if need be. `$1` user id.
    pub(super) const BUMP: &str = "
        insert into latch_users (user_id, auth_epoch) values ($1, 1)
        on conflict (user_id) do update set auth_epoch = latch_users.auth_epoch + 1
        returning auth_epoch";

    /// Moves one session (`$3`) of the user (`$1`) to the epoch `$2`.
    pub(super) const KEEP: &str =
        "update sessions set auth_epoch = $2 where user_id = $1 and id_hash = $3";

    /// Deletes the user's (`$1`) sessions signed in before the epoch `$2`.
    pub(super) const BEFORE_EPOCH: &str = "
        delete from sessions
        where user_id = $1 and (auth_epoch is null or auth_epoch < $2)
        returning id_hash";
}

/// A row of [`sql::SESSIONS`].
#[derive(sqlx::FromRow)]
struct DeviceRow {
    handle: Vec<u8>,
    signed_in_at: Option<i64>,
    last_seen: Option<i64>,
    user_agent: Option<String>,
    address: Option<String>,
    current: Option<bool>,
}

impl DeviceRow {
    fn into_device(self) -> Option<crate::user::Device> {
        let signed_in_at = self.signed_in_at.unwrap_or(0);
        let last_seen = self.last_seen.unwrap_or(signed_in_at);
        Some(crate::user::Device {
            handle: crate::user::Handle::from_slice(&self.handle)?,
            signed_in_at: super::from_unix_ms(signed_in_at),
            last_seen: super::from_unix_ms(last_seen),
            client: crate::ClientInfo {
                user_agent: self.user_agent,
                address: self.address,
            },
            current: self.current.unwrap_or(false),
        })
    }
}

/// The sessions table the statements work on, and whether they may be prepared and kept on
/// the connection (not behind a transaction pooler: see `postgres::Statements`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) table: &'a Table,
    pub(crate) persistent: bool,
}

impl Target<'_> {
    /// `template`, written for the default table, for this one.
    pub(crate) fn text(self, template: &'static str) -> &'static str {
        self.table.sql(template)
    }
}

/// The per-user operations for one backend's connection type.
macro_rules! user_operations {
    ($connection:ty) => {
        use sqlx::Connection as _;

        use super::super::batch::returned_ids;
        use super::super::{
            CREATE_SIGNED_IN, LOCK_USER, REKEY, Record, Rekeyed, UserColumns, encode_data,
            rekey_outcome,
        };
        use super::super::{StoreError, unix_ms};
        use super::Target;
        use super::{DeviceRow, sql};
        use crate::IdHash;
        use crate::user::{Device, Revoke};
        use time::OffsetDateTime;

        /// [`REKEY`]: `epoch` is the auth epoch of a sign-in, `None` for a plain rekey.
        pub(crate) async fn rekey(
            target: Target<'_>,
            connection: &mut $connection,
            old: &IdHash,
            new: &IdHash,
            record: &Record,
            now: OffsetDateTime,
            epoch: Option<i64>,
        ) -> Result<Rekeyed, StoreError> {
            let user = UserColumns::of(record);
            let changed = sqlx::query(target.text(REKEY))
                .bind(new.as_bytes())
                .bind(encode_data(&record.data)?)
                .bind(record.version)
                .bind(unix_ms(record.expires_at))
                .bind(old.as_bytes())
                .bind(unix_ms(now))
                .bind(user.user_id)
                .bind(user.handle)
                .bind(user.signed_in_at)
                .bind(user.user_agent)
                .bind(user.address)
                .bind(epoch)
                .persistent(target.persistent)
                .execute(connection)
                .await
                .map(|done| done.rows_affected());
            rekey_outcome(changed)
        }

        /// [`UserIndex::sign_in`](super::super::UserIndex::sign_in), in one transaction.
        pub(crate) async fn sign_in(
            target: Target<'_>,
            connection: &mut $connection,
            old: Option<&IdHash>,
            new: &IdHash,
            record: &Record,
            now: OffsetDateTime,
        ) -> Result<Rekeyed, StoreError> {
            let user = UserColumns::of(record);
            let Some(user_id) = user.user_id else {
                return Err(StoreError::failed("a sign-in needs a signed-in record"));
            };
            let mut transaction = connection.begin().await?;
            let epoch: i64 = sqlx::query_scalar(target.text(LOCK_USER))
                .bind(user_id)
                .persistent(target.persistent)
                .fetch_one(&mut *transaction)
                .await?;
            let outcome = match old {
                Some(old) => {
                    rekey(target, &mut transaction, old, new, record, now, Some(epoch)).await?
                }
                None => {
                    let created = sqlx::query(target.text(CREATE_SIGNED_IN))
                        .bind(new.as_bytes())
                        .bind(encode_data(&record.data)?)
                        .bind(record.version)
                        .bind(unix_ms(record.expires_at))
                        .bind(unix_ms(record.created_at))
                        .bind(unix_ms(now))
                        .bind(user.user_id)
                        .bind(user.handle)
                        .bind(user.signed_in_at)
                        .bind(user.user_agent)
                        .bind(user.address)
                        .bind(epoch)
                        .persistent(target.persistent)
                        .execute(&mut *transaction)
                        .await
                        .map(|done| done.rows_affected());
                    // Nothing inserted: the new ID is in use.
                    match rekey_outcome(created)? {
                        Rekeyed::Gone => Rekeyed::IdTaken,
                        outcome => outcome,
                    }
                }
            };
            // Anything but success rolls back as the transaction drops.
            if outcome == Rekeyed::Done {
                transaction.commit().await?;
            }
            Ok(outcome)
        }

        /// [`UserIndex::user_sessions`](super::super::UserIndex::user_sessions).
        pub(crate) async fn user_sessions(
            target: Target<'_>,
            connection: &mut $connection,
            user_id: &str,
            current: Option<&IdHash>,
            now: OffsetDateTime,
        ) -> Result<Vec<Device>, StoreError> {
            let rows: Vec<DeviceRow> = sqlx::query_as(target.text(sql::SESSIONS))
                .bind(user_id)
                .bind(current.map(IdHash::as_bytes))
                .bind(unix_ms(now))
                .persistent(target.persistent)
                .fetch_all(connection)
                .await?;
            Ok(rows
                .into_iter()
                .filter_map(DeviceRow::into_device)
                .collect())
        }

        /// [`UserIndex::revoke`](super::super::UserIndex::revoke).
        pub(crate) async fn revoke(
            target: Target<'_>,
            connection: &mut $connection,
            user_id: &str,
            which: Revoke<'_>,
        ) -> Result<Vec<IdHash>, StoreError> {
            let (handle, all_but) = match which {
                Revoke::Handle(handle) => (Some(handle.as_bytes()), None),
                Revoke::AllBut(keep) => (None, Some(keep.as_bytes())),
                Revoke::All => (None, None),
            };
            let rows = sqlx::query(target.text(sql::REVOKE))
                .bind(user_id)
                .bind(handle)
                .bind(all_but)
                .persistent(target.persistent)
                .fetch_all(connection)
                .await?;
            Ok(returned_ids(rows)?.into_iter().collect())
        }

        /// [`UserIndex::bump_auth_epoch`](super::super::UserIndex::bump_auth_epoch), in
        /// one transaction.
        pub(crate) async fn bump_auth_epoch(
            target: Target<'_>,
            connection: &mut $connection,
            user_id: &str,
            keep: Option<&IdHash>,
        ) -> Result<Vec<IdHash>, StoreError> {
            let mut transaction = connection.begin().await?;
            let epoch: i64 = sqlx::query_scalar(target.text(sql::BUMP))
                .bind(user_id)
                .persistent(target.persistent)
                .fetch_one(&mut *transaction)
                .await?;
            if let Some(keep) = keep {
                sqlx::query(target.text(sql::KEEP))
                    .bind(user_id)
                    .bind(epoch)
                    .bind(keep.as_bytes())
                    .persistent(target.persistent)
                    .execute(&mut *transaction)
                    .await?;
            }
            let rows = sqlx::query(target.text(sql::BEFORE_EPOCH))
                .bind(user_id)
                .bind(epoch)
                .persistent(target.persistent)
                .fetch_all(&mut *transaction)
                .await?;
            transaction.commit().await?;
            Ok(returned_ids(rows)?.into_iter().collect())
        }
    };
}

#[cfg(feature = "sqlite")]
pub(super) mod sqlite {
    user_operations!(sqlx::SqliteConnection);
}

#[cfg(feature = "postgres")]
pub(super) mod postgres {
    user_operations!(sqlx::PgConnection);
}
