//! A small GNU-style `getopt(3)`: short options from an option string
//! (`x` a flag, `x:` takes an argument), clustering (`-sP`), attached or
//! separate arguments (`-fwc`, `-f wc`), `--` ending the options, and
//! permutation: options after the first non-option still count, as with
//! glibc (unless `POSIXLY_CORRECT` is set).

/// One parsed option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    pub name: char,
    pub value: Option<String>,
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

/// Parses `args` (without argv[0]); returns options in order and the operands.
pub fn getopt(args: &[String], spec: &str) -> Result<(Vec<Opt>, Vec<String>), GetoptError> {
    let permute = std::env::var_os("POSIXLY_CORRECT").is_none() && !spec.starts_with('+');
    let spec = spec.trim_start_matches('+');
    let takes_arg = |c: char| -> Option<bool> {
        let mut it = spec.chars().peekable();
        while let Some(x) = it.next() {
            let has = it.peek() == Some(&':');
            if has {
                it.next();
            }
            if x == c && c != ':' {
                return Some(has);
            }
        }
        None
    };
    let mut opts = Vec::new();
    let mut operands = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            operands.extend(args[i..].iter().cloned());
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            operands.push(arg.clone());
            if !permute {
                operands.extend(args[i..].iter().cloned());
                break;
            }
            continue;
        }
        let chars: Vec<char> = arg.chars().skip(1).collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            j += 1;
            match takes_arg(c) {
                None => return Err(GetoptError::Unknown(c)),
                Some(false) => opts.push(Opt { name: c, value: None }),
                Some(true) => {
                    let value = if j < chars.len() {
                        chars[j..].iter().collect()
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(GetoptError::MissingArgument(c));
                    };
                    opts.push(Opt { name: c, value: Some(value) });
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

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
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
}
