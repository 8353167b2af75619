//! Which admin text commands only look (`admin = read` suffices) and which
//! change or stop something (`admin = write`). This table is the one place
//! that says so: a new admin command gets a row here, and a command
//! without a row counts as one that changes things.

use super::rules::AdminLevel;

/// What an admin line needs, by its first word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminNeed {
    /// An admin level (read or write).
    Level(AdminLevel),
    /// The `acl` commands, checked by [`super::commands`].
    AclCommand,
}

/// First word (case-blind) → what it needs. Two-word commands (`show
/// jobs`, `cancel job`, `drop function`) are classed by their first word,
/// as every form of each is alike.
const TABLE: &[(&str, AdminNeed)] = &[
    ("status", READ),
    ("workers", READ),
    ("show", READ),
    ("prioritystatus", READ),
    ("version", READ),
    ("getpid", READ),
    ("verbose", READ),
    ("record", READ),
    ("records", READ),
    ("dead", READ),
    ("history", READ),
    ("cancel", WRITE),
    ("drop", WRITE),
    ("create", WRITE),
    ("maxqueue", WRITE),
    ("shutdown", WRITE),
    ("pause", WRITE),
    ("resume", WRITE),
    ("purge", WRITE),
    ("requeue", WRITE),
    ("policy", READ_UNLESS_CHANGED),
    ("cron", READ_UNLESS_CHANGED),
    ("dead", READ),
    ("acl", AdminNeed::AclCommand),
];

const READ: AdminNeed = AdminNeed::Level(AdminLevel::Read);
const WRITE: AdminNeed = AdminNeed::Level(AdminLevel::Write);
/// A command that lists with no second word (`policy`, `cron list`) and
/// changes with one of [`CHANGING_WORDS`] (`policy set`, `cron add`).
const READ_UNLESS_CHANGED: AdminNeed = AdminNeed::Level(AdminLevel::Read);

/// Second words that make a listing command a changing one.
const CHANGING_WORDS: &[&str] = &["set", "clear", "add", "remove", "run"];

/// What the admin line needs; unknown commands need write.
pub fn classify(line: &[u8]) -> AdminNeed {
    let mut words = line.trim_ascii().split(|b| *b == b' ' || *b == b'\t').filter(|w| !w.is_empty());
    let first = words.next().unwrap_or_default();
    let Some((word, need)) = TABLE.iter().find(|(word, _)| first.eq_ignore_ascii_case(word.as_bytes())) else {
        return WRITE;
    };
    let listing = ["policy", "cron"].contains(word);
    let second = words.next().unwrap_or_default();
    if listing && CHANGING_WORDS.iter().any(|w| second.eq_ignore_ascii_case(w.as_bytes())) {
        return WRITE;
    }
    *need
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classed_by_their_first_word() {
        assert_eq!(classify(b"status"), READ);
        assert_eq!(classify(b"  SHOW unique jobs \r"), READ);
        assert_eq!(classify(b"records build failed 10"), READ);
        assert_eq!(classify(b"dead {\"function\":\"build\"}"), READ);
        assert_eq!(classify(b"purge dead build"), WRITE);
        assert_eq!(classify(b"cancel job H:x:1"), WRITE);
        assert_eq!(classify(b"shutdown graceful"), WRITE);
        assert_eq!(classify(b"acl list"), AdminNeed::AclCommand);
        assert_eq!(classify(b"policy"), READ);
        assert_eq!(classify(b"policy set f {}"), WRITE);
        assert_eq!(classify(b"POLICY  Clear f"), WRITE);
        assert_eq!(classify(b"cron list"), READ);
        assert_eq!(classify(b"cron add {}"), WRITE);
        assert_eq!(classify(b"requeue function f"), WRITE);
        assert_eq!(classify(b"CRON  List"), READ);
        assert_eq!(classify(b"cron run list"), WRITE);
        assert_eq!(classify(b"cron remove x"), WRITE);
    }

    #[test]
    fn unknown_commands_need_write() {
        assert_eq!(classify(b"frobnicate"), WRITE);
        assert_eq!(classify(b""), WRITE);
        assert_eq!(classify(b"statusx"), WRITE);
    }
}
