//! The SQLite session store: the embedded default.

use sqlx::{Row, SqlitePool};

use super::{Record, Rekeyed, SessionStore, decode_data, encode_data, is_unique_violation};
use crate::session::{IdHash, SessionError};

/// Sessions in a SQLite database (see `migrations/sqlite`).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Applies the embedded migrations in `migrations/sqlite`.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await
    }
}

#[async_trait::async_trait]
impl SessionStore for SqliteStore {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, SessionError> {
        let result = sqlx::query(
            r#"
            insert into sessions (id_hash, data, version, created_at, expires_at)
            values (?, ?, ?, ?, ?)
            "#,
        )
        .bind(id.as_bytes())
        .bind(encode_data(&record.data)?)
        .bind(record.version)
        .bind(record.created_at)
        .bind(record.expires_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn load(&self, id: &IdHash, now: i64) -> Result<Option<Record>, SessionError> {
        let row = sqlx::query(
            r#"
            select data, version, created_at, expires_at
            from sessions
            where id_hash = ? and expires_at > ?
            "#,
        )
        .bind(id.as_bytes())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Record {
            data: decode_data(row.try_get("data")?)?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    async fn save(&self, id: &IdHash, record: &Record, now: i64) -> Result<bool, SessionError> {
        let result = sqlx::query(
            r#"
            update sessions
            set data = ?, version = ?, expires_at = ?
            where id_hash = ? and version = ? and expires_at > ?
            "#,
        )
        .bind(encode_data(&record.data)?)
        .bind(record.version)
        .bind(record.expires_at)
        .bind(id.as_bytes())
        .bind(record.version - 1)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    async fn touch(&self, id: &IdHash, expires_at: i64, now: i64) -> Result<(), SessionError> {
        sqlx::query(
            r#"
            update sessions
            set expires_at = ?
            where id_hash = ? and expires_at > ? and expires_at < ?
            "#,
        )
        .bind(expires_at)
        .bind(id.as_bytes())
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn rekey(&self, old: &IdHash, new: &IdHash, now: i64) -> Result<Rekeyed, SessionError> {
        let result = sqlx::query(
            r#"
            update sessions
            set id_hash = ?
            where id_hash = ? and expires_at > ?
            "#,
        )
        .bind(new.as_bytes())
        .bind(old.as_bytes())
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => Ok(Rekeyed::Done),
            Ok(_) => Ok(Rekeyed::Gone),
            Err(e) if is_unique_violation(&e) => Ok(Rekeyed::IdTaken),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, id: &IdHash) -> Result<(), SessionError> {
        sqlx::query("delete from sessions where id_hash = ?")
            .bind(id.as_bytes())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_expired(&self, now: i64, limit: u32) -> Result<u64, SessionError> {
        // The subquery walks the expires_at index, so a batch costs O(limit), not a table scan.
        let result = sqlx::query(
            r#"
            delete from sessions
            where id_hash in (
                select id_hash from sessions where expires_at <= ? limit ?
            )
            "#,
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }
}
