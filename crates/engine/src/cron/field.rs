//! One field of a cron schedule as a set of allowed values (a bit mask).
//!
//! A field is `*` (any), a number, a name where the field has names
//! (`jan`…`dec`, `sun`…`sat`, any case), a range `1-5`, a step `*/10` or
//! `0-30/5` or `5/15` (from 5 to the end), or a comma-separated list of
//! these.

/// The bounds and names of one field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldKind {
    /// Named in error messages.
    pub name: &'static str,
    pub min: u32,
    pub max: u32,
    /// Names of the values from `min` on, if the field has any.
    pub names: &'static [&'static str],
}

pub(crate) const SECOND: FieldKind = FieldKind { name: "second", min: 0, max: 59, names: &[] };
pub(crate) const MINUTE: FieldKind = FieldKind { name: "minute", min: 0, max: 59, names: &[] };
pub(crate) const HOUR: FieldKind = FieldKind { name: "hour", min: 0, max: 23, names: &[] };
pub(crate) const DAY_OF_MONTH: FieldKind = FieldKind { name: "day of month", min: 1, max: 31, names: &[] };
pub(crate) const MONTH: FieldKind = FieldKind {
    name: "month",
    min: 1,
    max: 12,
    names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
};
/// 0 and 7 both mean Sunday; [`parse`] folds 7 into 0.
pub(crate) const DAY_OF_WEEK: FieldKind =
    FieldKind { name: "day of week", min: 0, max: 7, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

/// A field's allowed values as a bit mask (bit `v` for value `v`), and
/// whether it was `*` (unrestricted: it matters for the two day fields,
/// of which classic cron wants either when both are restricted).
pub(crate) fn parse(text: &str, kind: FieldKind) -> Result<(u64, bool), String> {
    let FieldKind { name, min, max, .. } = kind;
    let text = text.trim();
    let all = (min..=max).fold(0u64, |m, v| m | (1 << v));
    if text.is_empty() || text == "*" {
        return Ok((fold_sunday(all, kind), true));
    }
    let mut mask = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("{name}: bad step in {part:?}"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("{name}: a step of 0 in {part:?}"));
        }
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, kind)?, value(b, kind)?)
        } else {
            let v = value(range, kind)?;
            // `5/15` runs from 5 to the end of the field.
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{name}: {part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            mask |= 1 << v;
            v += step;
        }
    }
    Ok((fold_sunday(mask, kind), false))
}

/// One value: a number, or a name of the field's.
fn value(text: &str, kind: FieldKind) -> Result<u32, String> {
    if let Ok(v) = text.parse::<u32>() {
        return Ok(v);
    }
    kind.names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(text))
        .map(|i| kind.min + i as u32)
        .ok_or_else(|| format!("{}: {text:?} is not a value", kind.name))
}

/// Day of week 7 is Sunday, as 0 is.
fn fold_sunday(mask: u64, kind: FieldKind) -> u64 {
    if kind.name == DAY_OF_WEEK.name && mask & (1 << 7) != 0 {
        (mask | 1) & !(1 << 7)
    } else {
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(mask: u64) -> Vec<u32> {
        (0..64).filter(|v| mask & (1 << v) != 0).collect()
    }

    #[test]
    fn every_form() {
        assert_eq!(parse("*", HOUR).unwrap(), ((1 << 24) - 1, true));
        assert_eq!(bits(parse("5", MINUTE).unwrap().0), [5]);
        assert_eq!(bits(parse("1,15,30", MINUTE).unwrap().0), [1, 15, 30]);
        assert_eq!(bits(parse("1-4", HOUR).unwrap().0), [1, 2, 3, 4]);
        assert_eq!(bits(parse("*/20", SECOND).unwrap().0), [0, 20, 40]);
        assert_eq!(bits(parse("10-30/10", MINUTE).unwrap().0), [10, 20, 30]);
        assert_eq!(bits(parse("50/5", MINUTE).unwrap().0), [50, 55]);
        assert_eq!(bits(parse("1-2,10-11", DAY_OF_MONTH).unwrap().0), [1, 2, 10, 11]);
        assert!(!parse("1-2", DAY_OF_MONTH).unwrap().1, "restricted");
    }

    #[test]
    fn names_and_sunday_as_seven() {
        assert_eq!(bits(parse("JAN,mar-May", MONTH).unwrap().0), [1, 3, 4, 5]);
        assert_eq!(bits(parse("mon-fri", DAY_OF_WEEK).unwrap().0), [1, 2, 3, 4, 5]);
        assert_eq!(bits(parse("7", DAY_OF_WEEK).unwrap().0), [0]);
        assert_eq!(bits(parse("5-7", DAY_OF_WEEK).unwrap().0), [0, 5, 6]);
        assert_eq!(bits(parse("*", DAY_OF_WEEK).unwrap().0), [0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn bad_fields_say_which_and_why() {
        for (text, kind, says) in [
            ("60", MINUTE, "outside 0-59"),
            ("0", DAY_OF_MONTH, "outside 1-31"),
            ("5-1", HOUR, "outside"),
            ("*/0", MINUTE, "step of 0"),
            ("*/x", MINUTE, "bad step"),
            ("foo", MONTH, "not a value"),
            ("mon", MONTH, "not a value"),
            ("1,,2", MINUTE, "not a value"),
        ] {
            let e = parse(text, kind).unwrap_err();
            assert!(e.contains(kind.name) && e.contains(says), "{text}: {e}");
        }
    }
}
