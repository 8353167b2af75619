//! A small GNU-style `getopt(3)`: short options from an option string
//! (`x` a flag, `x:` takes an argument), clustering (`-sP`), attached or
//! separate arguments (`-fwc`, `-f wc`), `--` ending the options, and
//! permutation: options after the first non-option still count, as with
//! glibc (unless `POSIXLY_CORRECT` is set).
//!
//! Arguments are bytes (`OsString`), as in C: option values and operands
//! that are not valid UTF-8 come back unchanged.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// One parsed option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub name: char,
    pub value: Option<OsString>,
}

/// Why parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetoptError {
    Unknown(char),
    MissingArgument(char),
}

impl std::fmt::Display for GetoptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GetoptError::Unknown(c) => write!(f, "invalid option -- '{c}'"),
            GetoptError::MissingArgument(c) => write!(f, "option requires an argument -- '{c}'"),
        }
    }
}

/// Parses `args` (without `argv[0]`); returns options in order and the operands.
pub fn getopt(args: &[OsString], spec: &str) -> Result<(Vec<Opt>, Vec<OsString>), GetoptError> {
    let permute = std::env::var_os("POSIXLY_CORRECT").is_none() && !spec.starts_with('+');
    let spec = spec.trim_start_matches('+').as_bytes();
    let takes_arg = |c: u8| -> Option<bool> {
        let mut it = spec.iter().copied().peekable();
        while let Some(x) = it.next() {
            let has = it.peek() == Some(&b':');
            if has {
                it.next();
            }
            if x == c && c != b':' {
                return Some(has);
            }
        }
        None
    };
    let mut opts = Vec::new();
    let mut operands = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        i += 1;
        if arg == b"--" {
            operands.extend(args[i..].iter().cloned());
            break;
        }
        if !arg.starts_with(b"-") || arg == b"-" {
            operands.push(args[i - 1].clone());
            if !permute {
                operands.extend(args[i..].iter().cloned());
                break;
            }
            continue;
        }
        let letters = &arg[1..];
        let mut j = 0;
        while j < letters.len() {
            let c = letters[j];
            j += 1;
            // A byte outside ASCII is never an option letter; it is shown
            // as the character with that code, as getopt prints the byte.
            let name = char::from(c);
            match takes_arg(c) {
                None => return Err(GetoptError::Unknown(name)),
                Some(false) => opts.push(Opt { name, value: None }),
                Some(true) => {
                    let value = if j < letters.len() {
                        OsStr::from_bytes(&letters[j..]).to_os_string()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(GetoptError::MissingArgument(name));
                    };
                    opts.push(Opt { name, value: Some(value) });
                    break;
                }
            }
        }
    }
    Ok((opts, operands))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn clusters_attached_and_separate_arguments() {
        let (o, rest) = getopt(&v(&["-fwc", "-sP", "-h", "host", "x"]), "f:h:sP").unwrap();
        assert_eq!(o.len(), 4);
        assert_eq!(o[0], Opt { name: 'f', value: Some("wc".into()) });
        assert_eq!(o[3], Opt { name: 'h', value: Some("host".into()) });
        assert_eq!(rest, v(&["x"]));
    }

    #[test]
    fn permutes_and_stops_at_double_dash() {
        let (o, rest) = getopt(&v(&["-w", "-f", "wc", "--", "wc", "-l"]), "wf:").unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(rest, v(&["wc", "-l"]));
        let (o, rest) = getopt(&v(&["-f", "wc", "x", "-P"]), "f:P").unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(rest, v(&["x"]));
    }

    #[test]
    fn reports_errors() {
        assert_eq!(getopt(&v(&["-Z"]), "f:"), Err(GetoptError::Unknown('Z')));
        assert_eq!(getopt(&v(&["-f"]), "f:"), Err(GetoptError::MissingArgument('f')));
    }

    #[test]
    fn keeps_bytes_that_are_not_utf8() {
        let args = vec![
            OsString::from("-f"),
            OsStr::from_bytes(b"c\xffat").into(),
            OsStr::from_bytes(b"-u\xfe").into(),
            OsStr::from_bytes(b"\xff\xfeabc").into(),
        ];
        let (o, rest) = getopt(&args, "f:u:").unwrap();
        assert_eq!(o[0].value.as_deref().map(OsStr::as_bytes), Some(&b"c\xffat"[..]));
        assert_eq!(o[1].value.as_deref().map(OsStr::as_bytes), Some(&b"\xfe"[..]));
        assert_eq!(rest[0].as_bytes(), b"\xff\xfeabc");
    }
}
