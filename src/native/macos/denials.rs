//! `--log-denials` on macOS: Seatbelt reports each refusal to the unified log (sender `Sandbox`);
//! codex-box runs `log stream` around the command and lists the refusals of the sandboxed
//! processes afterwards. Reading the log needs no privilege for one's own processes. The parser is
//! pure and tested everywhere; the stream itself only exists on macOS. Observes, enforces nothing.

/// The predicate that selects Seatbelt's reports.
pub const PREDICATE: &str = "sender == \"Sandbox\"";

/// One refusal, as Seatbelt logs it: `Sandbox: cat(4242) deny(1) file-read-data /Users/me/.ssh/id_rsa`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub process: String,
    pub pid: u32,
    pub operation: String,
    /// The path, address or service refused (may be empty).
    pub target: String,
}

/// Parses one log line; `None` for lines that are not a refusal.
pub fn parse(line: &str) -> Option<Denial> {
    let rest = &line[line.find("Sandbox: ")? + "Sandbox: ".len()..];
    let (head, tail) = rest.split_once(" deny")?;
    let open = head.rfind('(')?;
    let pid = head[open + 1..].strip_suffix(')')?.parse().ok()?;
    let tail = tail.trim_start();
    let tail = tail.strip_prefix('(').and_then(|t| t.split_once(')')).map_or(tail, |(_, t)| t).trim_start();
    let (operation, target) = tail.split_once(' ').unwrap_or((tail, ""));
    Some(Denial {
        process: head[..open].to_string(),
        pid,
        operation: operation.to_string(),
        target: target.trim().to_string(),
    })
}

/// The refusals among `lines` of the processes in `pids` (all when `pids` is empty), without repeats.
pub fn collect<'a>(lines: impl IntoIterator<Item = &'a str>, pids: &[u32]) -> Vec<Denial> {
    let mut out: Vec<Denial> = Vec::new();
    for d in lines.into_iter().filter_map(parse) {
        if (pids.is_empty() || pids.contains(&d.pid)) && !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// A running `log stream`, stopped by [`Stream::finish`].
#[cfg(target_os = "macos")]
pub struct Stream {
    child: std::process::Child,
    reader: std::thread::JoinHandle<Vec<String>>,
}

#[cfg(target_os = "macos")]
impl Stream {
    /// Starts `/usr/bin/log stream --style compact --predicate 'sender == "Sandbox"'`.
    pub fn start() -> std::io::Result<Stream> {
        use std::io::BufRead;
        let mut child = std::process::Command::new("/usr/bin/log")
            .args(["stream", "--style", "compact", "--predicate", PREDICATE])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let out = child.stdout.take().ok_or_else(|| std::io::Error::other("log stream has no stdout"))?;
        let reader = std::thread::spawn(move || std::io::BufReader::new(out).lines().map_while(Result::ok).collect());
        // `log stream` needs a moment before it delivers; a refusal earlier than that is missed.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(Stream { child, reader })
    }

    /// Waits for late reports, stops the stream and returns every refusal it saw.
    pub fn finish(mut self) -> Vec<Denial> {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let lines = self.reader.join().unwrap_or_default();
        collect(lines.iter().map(String::as_str), &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seatbelt_reports() {
        let line = "2026-11-26 02:10:00.123 E  kernel[0:1a2b] (Sandbox) Sandbox: cat(4242) deny(1) file-read-data /Users/me/.ssh/id rsa";
        assert_eq!(
            parse(line),
            Some(Denial {
                process: "cat".into(),
                pid: 4242,
                operation: "file-read-data".into(),
                target: "/Users/me/.ssh/id rsa".into()
            })
        );
        let d = parse("Sandbox: my (tool)(7) deny network-outbound 1.2.3.4:443").unwrap();
        assert_eq!(
            (d.process.as_str(), d.pid, d.operation.as_str(), d.target.as_str()),
            ("my (tool)", 7, "network-outbound", "1.2.3.4:443")
        );
        assert_eq!(parse("Sandbox: x(1) deny(1) mach-lookup").unwrap().target, "");
        assert_eq!(parse("kernel: something else entirely"), None);
        assert_eq!(parse("Sandbox: cat(notapid) deny(1) file-read-data /x"), None);
    }

    #[test]
    fn collects_without_repeats_and_by_pid() {
        let lines = [
            "Sandbox: cat(1) deny(1) file-read-data /a",
            "Sandbox: cat(1) deny(1) file-read-data /a",
            "Sandbox: sh(2) deny(1) file-write-create /b",
            "unrelated",
        ];
        assert_eq!(collect(lines, &[]).len(), 2);
        let only = collect(lines, &[2]);
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].target, "/b");
    }
}
