//! Validation and quoting of table names that come from command-line flags.
//!
//! gearmand pasted table names into SQL unquoted. We validate them (no
//! control characters, a length every backend accepts) and always quote
//! them, so a name can never change the meaning of a statement.

use crate::{Result, StoreError};

/// Longest table name accepted (PostgreSQL truncates at 63 bytes, MySQL at 64).
const MAX_TABLE_NAME: usize = 63;

/// Checks a table name from a flag.
pub fn validate_table(flag: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(StoreError::Config(format!("{flag}: the table name is empty")));
    }
    if name.len() > MAX_TABLE_NAME {
        return Err(StoreError::Config(format!("{flag}: table name longer than {MAX_TABLE_NAME} bytes: {name:?}")));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(StoreError::Config(format!("{flag}: table name contains control characters: {name:?}")));
    }
    Ok(())
}

/// True for a name SQL would accept without quotes (`[A-Za-z_][A-Za-z0-9_$]*`).
fn is_bare_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Quotes with double quotes (SQLite, PostgreSQL), doubling inner quotes.
pub fn double_quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// PostgreSQL: gearmand created the table unquoted, so PostgreSQL folded a
/// bare name to lower case (`--libpq-table=GearmanQueue` made
/// `gearmanqueue`). Fold bare names the same way so we find that table;
/// quote anything else verbatim.
pub fn postgres_table(name: &str) -> String {
    if is_bare_identifier(name) {
        double_quoted(&name.to_ascii_lowercase())
    } else {
        double_quoted(name)
    }
}

/// The name as PostgreSQL stores it in its catalogues (see [`postgres_table`]).
pub fn postgres_catalog_name(name: &str) -> String {
    if is_bare_identifier(name) {
        name.to_ascii_lowercase()
    } else {
        name.to_string()
    }
}

/// MySQL/MariaDB: backticks, doubling inner backticks.
pub fn backquoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_neutralises_injection() {
        assert_eq!(double_quoted("a\"; DROP TABLE x; --"), "\"a\"\"; DROP TABLE x; --\"");
        assert_eq!(backquoted("a`b"), "`a``b`");
        assert_eq!(postgres_table("GearmanQueue1"), "\"gearmanqueue1\"");
        assert_eq!(postgres_table("my table"), "\"my table\"");
    }

    #[test]
    fn validation() {
        assert!(validate_table("--t", "gearman_queue").is_ok());
        assert!(validate_table("--t", "").is_err());
        assert!(validate_table("--t", "a\0b").is_err());
        assert!(validate_table("--t", &"x".repeat(64)).is_err());
    }
}
