//! The PostgreSQL session store: for several app instances sharing one database.

use sqlx::{PgPool, Row};

use super::{Record, Rekeyed, SessionStore, decode_data, encode_data, is_unique_violation};
use crate::session::{IdHash, SessionError};

/// Sessions in a PostgreSQL database (see `migrations/postgres`).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Applies the embedded migrations in `migrations/postgres`.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        sqlx::migrate!("migrations/postgres").run(&self.pool).await
    }
}

#[async_trait::async_trait]
impl SessionStore for PostgresStore {
    async fn create(&self, id: &IdHash, record: &Record) -> Result<bool, SessionError> {
        let result = sqlx::query(
            r#"
            insert into sessions (id_hash, data, version, created_at, expires_at)
            values ($1, $2, $3, $4, $5)
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
            where id_hash = $1 and expires_at > $2
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
            set data = $1, version = $2, expires_at = $3
            where id_hash = $4 and version = $5 and expires_at > $6
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
            set expires_at = $1
            where id_hash = $2 and expires_at > $3 and expires_at < $1
            "#,
        )
        .bind(expires_at)
        .bind(id.as_bytes())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn rekey(&self, old: &IdHash, new: &IdHash, now: i64) -> Result<Rekeyed, SessionError> {
        let result = sqlx::query(
            r#"
            update sessions
            set id_hash = $1
            where id_hash = $2 and expires_at > $3
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
        sqlx::query("delete from sessions where id_hash = $1")
            .bind(id.as_bytes())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_expired(&self, now: i64, limit: u32) -> Result<u64, SessionError> {
        // The subquery walks the expires_at index, so a batch costs O(limit), not a table scan.
        // `skip locked` lets several instances purge at once: each takes rows the others are not
        // already deleting, instead of queueing behind them.
        let result = sqlx::query(
            r#"
            delete from sessions
            where id_hash in (
                select id_hash from sessions where expires_at <= $1
                limit $2
                for update skip locked
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
