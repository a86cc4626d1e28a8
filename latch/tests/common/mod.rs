//! Scratch databases for the library's tests: a SQLite file in a temporary folder, or a fresh
//! Postgres database (dropped afterwards) when `LATCH_TEST_POSTGRES_URL` names a server.

/// A database of one backend, fresh for one test.
pub struct Scratch {
    pub url: String,
    /// The Postgres database to drop, and the server's admin URL.
    pub postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Scratch {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("app.db").display());
        Self {
            url,
            postgres: None,
            _dir: dir,
        }
    }

    pub async fn postgres() -> Option<Self> {
        let Ok(admin) = std::env::var("LATCH_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("LATCH_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "LATCH_REQUIRE_POSTGRES=1 but LATCH_TEST_POSTGRES_URL is not set"
            );
            return None;
        };
        let suffix: String = latch::SessionId::generate().hash().0[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let name = format!("latch_test_{suffix}");
        let pool = sqlx::PgPool::connect(&admin).await.expect("the admin URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&pool)
            .await
            .expect("create database");
        let (base, _) = admin.rsplit_once('/').expect("a URL with a database");
        Some(Self {
            url: format!("{base}/{name}"),
            postgres: Some((name, admin)),
            _dir: tempfile::tempdir().expect("a temporary folder"),
        })
    }

    /// `"sqlite"` or `"postgres"`: the name of the backend's migrations folder.
    #[allow(dead_code, reason = "only some test crates ask")]
    pub fn backend(&self) -> &'static str {
        if self.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// Drops the Postgres database, closing whatever connections still use it.
    pub async fn finish(self) {
        if let Some((name, admin)) = self.postgres {
            let pool = sqlx::PgPool::connect(&admin).await.expect("the admin URL");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "drop database if exists {name} with (force)"
            )))
            .execute(&pool)
            .await
            .expect("drop database");
        }
    }
}
