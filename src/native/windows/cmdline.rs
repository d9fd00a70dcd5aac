//! The command line and environment block `CreateProcessAsUserW` takes, built from argv and the
//! scrubbed variables. Pure and tested everywhere; the quoting follows the rules the Microsoft C
//! runtime (and `CommandLineToArgvW`) use to split a command line back into arguments. Enforces nothing.

/// One argument, quoted when needed so it splits back to exactly itself.
pub fn quote(arg: &str, out: &mut String) {
    if !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\x0b', '"']) {
        out.push_str(arg);
        return;
    }
    out.push('"');
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                // Backslashes before a quote are escaped, then the quote itself.
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                backslashes = 0;
                out.push(c);
            }
        }
    }
    // Backslashes before the closing quote are doubled so they do not escape it.
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
}

/// The whole command line.
pub fn command_line(argv: &[String]) -> String {
    let mut out = String::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        quote(a, &mut out);
    }
    out
}

/// A UTF-16 environment block: `NAME=VALUE\0` per variable, sorted by name ignoring case (as
/// Windows expects), ending with an extra `\0`. Variables whose name contains `=` or a NUL are dropped.
pub fn env_block(vars: &[(String, String)]) -> Vec<u16> {
    let mut vars: Vec<&(String, String)> =
        vars.iter().filter(|(k, v)| !k.is_empty() && !k.contains(['=', '\0']) && !v.contains('\0')).collect();
    vars.sort_by_key(|(k, _)| k.to_uppercase());
    let mut block: Vec<u16> = Vec::new();
    for (k, v) in vars {
        block.extend(format!("{k}={v}").encode_utf16());
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CommandLineToArgvW`'s splitting (for arguments after the first).
    fn split(line: &str) -> Vec<String> {
        let mut args = Vec::new();
        let mut cur = String::new();
        let (mut in_quotes, mut have) = (false, false);
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let start = i;
                while i < chars.len() && chars[i] == '\\' {
                    i += 1;
                }
                let n = i - start;
                if i < chars.len() && chars[i] == '"' {
                    cur.extend(std::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        cur.push('"');
                        i += 1;
                    }
                } else {
                    cur.extend(std::iter::repeat_n('\\', n));
                }
                have = true;
                continue;
            }
            if c == '"' {
                if in_quotes && chars.get(i + 1) == Some(&'"') {
                    cur.push('"');
                    i += 2;
                    continue;
                }
                in_quotes = !in_quotes;
                have = true;
            } else if (c == ' ' || c == '\t') && !in_quotes {
                if have {
                    args.push(std::mem::take(&mut cur));
                    have = false;
                }
            } else {
                cur.push(c);
                have = true;
            }
            i += 1;
        }
        if have {
            args.push(cur);
        }
        args
    }

    #[test]
    fn arguments_round_trip() {
        let cases: Vec<Vec<String>> = vec![
            vec!["cmd".into(), "/c".into(), "echo hi".into()],
            vec!["x".into(), String::new(), "a\"b".into(), "C:\\path with space\\".into()],
            vec!["x".into(), "back\\\\\"quote".into(), "trail\\".into(), "\\\\server\\share".into()],
            vec!["x".into(), "tab\there".into(), "ünï 日本".into(), "\"".into(), "\\\"".into()],
        ];
        for argv in cases {
            let line = command_line(&argv);
            assert_eq!(split(&line), argv, "{line}");
        }
        assert_eq!(command_line(&["a".into(), "b c".into()]), "a \"b c\"");
        assert_eq!(command_line(&["C:\\dir\\".into()]), "C:\\dir\\", "no quotes, backslashes as they are");
    }

    #[test]
    fn environment_block_is_sorted_and_double_terminated() {
        let block = env_block(&[("b".into(), "2".into()), ("A".into(), "1".into()), ("=C:".into(), "x".into())]);
        let text = String::from_utf16(&block).unwrap();
        assert_eq!(text, "A=1\0b=2\0\0");
        assert_eq!(env_block(&[]), vec![0, 0]);
    }
}
