//! Versioned schema migrations, one ordered list per backend.
//!
//! Each backend keeps a `schema_migrations(version, applied_at)` table. `Store::migrate`
//! reads the versions recorded there, applies the pending [`Migration`]s in ascending
//! order and records each one after its statements succeeded, so running it again applies
//! nothing. To change a schema, append a migration with the next version to the list of
//! *each* backend ([`SQLITE`] and [`CLICKHOUSE`]); never edit one that has shipped.
//!
//! ClickHouse has no transactional DDL, so its statements are written to be re-runnable
//! (`IF NOT EXISTS`): a migration interrupted half-way is simply applied again.

pub(crate) mod clickhouse;
pub(crate) mod sqlite;

pub use self::clickhouse::CLICKHOUSE;
pub use self::sqlite::SQLITE;

/// One schema step: its version (unique, ascending within a list), a short name for logs,
/// and the statements to run in order.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: &'static [&'static str],
}

/// The migrations of `list` not in `applied`, in ascending version order.
pub fn pending<'a>(list: &'a [Migration], applied: &[u32]) -> Vec<&'a Migration> {
    let mut out: Vec<&Migration> = list.iter().filter(|m| !applied.contains(&m.version)).collect();
    out.sort_by_key(|m| m.version);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(list: &[Migration]) {
        assert!(!list.is_empty());
        for w in list.windows(2) {
            assert!(
                w[0].version < w[1].version,
                "versions must be strictly ascending: {} then {}",
                w[0].version,
                w[1].version
            );
        }
        for m in list {
            assert!(m.version > 0 && !m.statements.is_empty(), "migration {} is empty", m.version);
        }
    }

    #[test]
    fn lists_are_ordered_and_cover_the_same_versions() {
        check(SQLITE);
        check(CLICKHOUSE);
        let a: Vec<u32> = SQLITE.iter().map(|m| m.version).collect();
        let b: Vec<u32> = CLICKHOUSE.iter().map(|m| m.version).collect();
        assert_eq!(a, b, "both backends must have the same schema versions");
    }

    #[test]
    fn pending_skips_applied_versions() {
        let all: Vec<u32> = pending(SQLITE, &[]).iter().map(|m| m.version).collect();
        assert_eq!(all, SQLITE.iter().map(|m| m.version).collect::<Vec<_>>());
        let applied: Vec<u32> = SQLITE.iter().map(|m| m.version).collect();
        assert!(pending(SQLITE, &applied).is_empty());
    }
}
