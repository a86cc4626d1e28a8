//! Where latch keeps sessions: the table's name (and on Postgres its schema), and the SQL that
//! names it. Every statement is written for the default table, `sessions`; for another, its
//! identifiers are renamed once and the text kept for the life of the process.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::ConfigError;

/// The default table.
const DEFAULT_TABLE: &str = "sessions";

/// The longest table or schema name: what Postgres allows (63 bytes) less the suffixes latch
/// adds for its index, trigger and function names (`_notify_updates`, 15).
const MAX_NAME: usize = 48;

/// The sessions table: `sessions` by default, or a name (and on Postgres a schema) of the app's
/// choosing, so latch's table never meets one of the app's.
///
/// A name is 1 to 48 lowercase ASCII letters, digits and underscores, starting with a letter or
/// an underscore, so it never needs quoting. Beside the table latch keeps, under names derived
/// from it: its indexes and triggers (`<table>_…`), the per-user epochs (`latch_users` for the
/// default table, `<table>_users` otherwise), its record of applied migrations
/// (`_latch_migrations`, or `_latch_migrations_<table>`), on Postgres two trigger functions and
/// the notification channel (`latch_sessions`, or `latch_<schema>_<table>`).
///
/// ```
/// let table = latch::Table::new("app_sessions")?.in_schema("auth")?;
/// assert_eq!(table.to_string(), "auth.app_sessions");
/// # Ok::<(), latch::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Table {
    name: String,
    schema: Option<String>,
    /// Statements renamed for this table, by their template's address: a few dozen, kept for
    /// the process's life so they can be handed to sqlx like the literals they stand for.
    /// Shared by the table's clones; a lookup allocates nothing.
    renamed: Arc<RwLock<HashMap<usize, &'static str>>>,
}

impl PartialEq for Table {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.schema == other.schema
    }
}

impl Eq for Table {}

impl Default for Table {
    fn default() -> Self {
        Self::named(DEFAULT_TABLE.to_owned())
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl Table {
    /// The table `name`, in the connection's default schema.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for `table` when `name` is not a plain identifier (see [`Table`]).
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        check_name("table", name)?;
        Ok(Self::named(name.to_owned()))
    }

    fn named(name: String) -> Self {
        Self {
            name,
            schema: None,
            renamed: Arc::default(),
        }
    }

    /// The same table in `schema` (Postgres only; latch creates the schema if it is missing).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for `schema` when it is not a plain identifier.
    pub fn in_schema(mut self, schema: &str) -> Result<Self, ConfigError> {
        check_name("schema", schema)?;
        self.schema = Some(schema.to_owned());
        Ok(self)
    }

    /// The table's own name, without its schema.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its schema, if one was given.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    pub(crate) fn is_default(&self) -> bool {
        self.schema.is_none() && self.name == DEFAULT_TABLE
    }

    /// `name` in this table's schema.
    fn qualified(&self, name: &str) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{name}"),
            None => name.to_owned(),
        }
    }

    /// The channel its changes are announced on (Postgres): `LISTEN` on it to hear of every
    /// session another instance changes or ends. Each notification's payload is the writer's
    /// `application_name`, a space, and the changed sessions' ID hashes in hex, comma-separated.
    pub fn channel(&self) -> String {
        if self.is_default() {
            return "latch_sessions".to_owned();
        }
        match &self.schema {
            Some(schema) => format!("latch_{schema}_{}", self.name),
            None => format!("latch_{}", self.name),
        }
    }

    /// Where latch records the migrations it applied to this table.
    pub(crate) fn migrations_table(&self) -> String {
        if self.is_default() {
            return crate::schema::MIGRATIONS_TABLE.to_owned();
        }
        self.qualified(&format!(
            "{}_{}",
            crate::schema::MIGRATIONS_TABLE,
            self.name
        ))
    }

    /// `template`, written for the default table, for this one; the same text every time.
    pub(crate) fn sql(&self, template: &'static str) -> &'static str {
        if self.is_default() {
            return template;
        }
        let key = template.as_ptr() as usize;
        let found = self
            .renamed
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .copied();
        if let Some(renamed) = found {
            return renamed;
        }
        let mut renamed = self.renamed.write().unwrap_or_else(PoisonError::into_inner);
        renamed
            .entry(key)
            .or_insert_with(|| Box::leak(self.rename(template).into_boxed_str()))
    }

    /// `sql`, written for the default table, with every identifier that names one of latch's
    /// objects renamed for this table (a statement built at run time).
    pub(crate) fn rename(&self, sql: impl AsRef<str> + Into<String>) -> String {
        if self.is_default() {
            return sql.into();
        }
        let sql = sql.as_ref();
        let mut out = String::with_capacity(sql.len() + 32);
        let mut rest = sql;
        while let Some(start) = rest.find(is_identifier_char) {
            out.push_str(&rest[..start]);
            let word_and_after = &rest[start..];
            let end = word_and_after
                .find(|c: char| !is_identifier_char(c))
                .unwrap_or(word_and_after.len());
            let word = &word_and_after[..end];
            self.rename_word(word, &mut out);
            rest = &word_and_after[end..];
        }
        out.push_str(rest);
        out
    }

    fn rename_word(&self, word: &str, out: &mut String) {
        match word {
            "sessions" => out.push_str(&self.qualified(&self.name)),
            "latch_users" => out.push_str(&self.qualified(&format!("{}_users", self.name))),
            "latch_sessions" => out.push_str(&self.channel()),
            "latch_notify_session_change" => {
                out.push_str(&self.qualified(&format!("{}_notify_change", self.name)));
            }
            "latch_notify_session_updates" => {
                out.push_str(&self.qualified(&format!("{}_notify_updates", self.name)));
            }
            // Index and trigger names: in the table's schema already, never qualified.
            _ => match word.strip_prefix("sessions_") {
                Some(suffix) => {
                    out.push_str(&self.name);
                    out.push('_');
                    out.push_str(suffix);
                }
                None => out.push_str(word),
            },
        }
    }
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A plain SQL identifier that needs no quoting, short enough for the names derived from it.
fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let plain = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !starts_well || !plain || name.len() > MAX_NAME {
        return Err(ConfigError::new(
            key,
            format!(
                "{name:?} is not a plain name: use 1 to {MAX_NAME} lowercase letters, digits \
                 and underscores, starting with a letter or an underscore"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table_leaves_every_statement_as_written() {
        let sql = "update sessions set x = 1 where sessions.id_hash = $1";
        assert_eq!(
            Table::default().sql("select 1 from sessions"),
            "select 1 from sessions"
        );
        assert_eq!(Table::default().rename(sql), sql);
        assert_eq!(Table::default().channel(), "latch_sessions");
        assert_eq!(Table::default().migrations_table(), "_latch_migrations");
    }

    #[test]
    fn another_table_renames_latchs_identifiers_and_nothing_else() {
        let table = Table::new("app_sessions")
            .and_then(|table| table.in_schema("auth"))
            .expect("valid");
        let renamed = table.rename(
            "create index sessions_expires_at_idx on sessions (expires_at); \
             update sessions set n = latch_users.n where sessions.id_hash = user_sessions.x; \
             perform pg_notify('latch_sessions', p); execute function latch_notify_session_change();",
        );
        assert_eq!(
            renamed,
            "create index app_sessions_expires_at_idx on auth.app_sessions (expires_at); \
             update auth.app_sessions set n = auth.app_sessions_users.n where \
             auth.app_sessions.id_hash = user_sessions.x; \
             perform pg_notify('latch_auth_app_sessions', p); execute function \
             auth.app_sessions_notify_change();"
        );
        assert_eq!(
            table.migrations_table(),
            "auth._latch_migrations_app_sessions"
        );
        let once = table.sql("select 1 from sessions");
        assert_eq!(once, "select 1 from auth.app_sessions");
        assert!(std::ptr::eq(once, table.sql("select 1 from sessions")));
    }

    #[test]
    fn names_that_would_need_quoting_are_refused() {
        for name in [
            "",
            "Sessions",
            "1st",
            "a-b",
            "a b",
            "a;drop",
            "ü",
            &"x".repeat(49),
        ] {
            assert!(Table::new(name).is_err(), "{name:?}");
            assert!(Table::default().in_schema(name).is_err(), "{name:?}");
        }
        assert!(Table::new("_s1").is_ok());
    }
}
