//! The proxy's record of every request: one line per decision in a per-session log file, counters
//! for the end-of-session summary, and, when asked, each denial on stderr.
//!
//! Line format (tab-separated): time (UTC, RFC 3339), `allow`/`deny`, `host:port`, method, and the
//! rule or reason. The file lives in the user's state directory (never in the workdir, which the
//! agent can write). What it does not record: request paths, headers or bodies.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub time: SystemTime,
    pub allowed: bool,
    /// `host:port` as requested (`[v6]:port` for IPv6).
    pub target: String,
    /// The bare host, for the top-denied summary.
    pub host: String,
    /// `CONNECT`, `GET`, …, or `-` when the request could not be parsed.
    pub method: String,
    /// The allow rule, or why it was refused.
    pub reason: String,
}

impl Event {
    /// The log line, without its newline.
    pub fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}",
            rfc3339(self.time),
            if self.allowed { "allow" } else { "deny" },
            plain(&self.target),
            plain(&self.method),
            self.reason.replace(['\t', '\n', '\r'], " ")
        )
    }
}

/// Counts for the end-of-session line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub allowed: u64,
    pub denied: u64,
    /// Denied hosts, most denied first (ties by name), at most five.
    pub top_denied: Vec<(String, u64)>,
    pub path: Option<PathBuf>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "proxy: {} allowed, {} denied", self.allowed, self.denied)?;
        if !self.top_denied.is_empty() {
            let top: Vec<String> = self.top_denied.iter().map(|(h, n)| format!("{h} ({n})")).collect();
            write!(f, "; denied most: {}", top.join(", "))?;
        }
        if let Some(p) = &self.path {
            write!(f, "; log: {}", p.display())?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Counts {
    allowed: u64,
    denied: u64,
    denied_hosts: BTreeMap<String, u64>,
}

/// Where decisions go. Shared by every connection of one proxy.
pub struct Log {
    file: Option<Mutex<File>>,
    path: Option<PathBuf>,
    counts: Mutex<Counts>,
    print_denials: bool,
}

/// The log file cannot be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create the proxy log {path}: {source}; check that the state directory is writable (XDG_STATE_HOME)")]
pub struct LogError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl Log {
    /// A log that only counts (and prints denials when asked).
    pub fn memory(print_denials: bool) -> Log {
        Log { file: None, path: None, counts: Mutex::default(), print_denials }
    }

    /// A log in a new file at `path` — or, when that exists, at `path` with `.1`, `.2`, … before
    /// its extension. Its directory is created (mode 0700 when codex-box creates or owns it) and
    /// must not be a symbolic link. The file is always new (mode 0600) and made in that directory's
    /// handle, never through a link, so a link planted where the log or its directory goes (a
    /// sandboxed command that can write the state directory) cannot make codex-box write elsewhere.
    pub fn file(path: &Path, print_denials: bool) -> Result<Log, LogError> {
        let err = |source| LogError { path: path.to_path_buf(), source };
        #[cfg(unix)]
        let dir = log_dir(path).map_err(|e| err(e.into_io()))?;
        #[cfg(not(unix))]
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut last = None;
        for n in 0..100 {
            let candidate = if n == 0 { path.to_path_buf() } else { numbered(path, n) };
            #[cfg(unix)]
            let opened = match candidate.file_name() {
                Some(name) => dir.create_file(name, 0o600).map_err(|e| e.into_io()),
                None => Err(std::io::ErrorKind::InvalidInput.into()),
            };
            #[cfg(not(unix))]
            let opened = open_new(&candidate);
            match opened {
                Ok(file) => {
                    return Ok(Log {
                        file: Some(Mutex::new(file)),
                        path: Some(candidate),
                        counts: Mutex::default(),
                        print_denials,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(err(e)),
            }
        }
        Err(err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AlreadyExists))))
    }

    /// A log whose lines go to stdout, unbuffered: the companion's proxy
    /// ([`crate::companion`]), whose lines codex-box on the host reads with [`Log::record_line`].
    #[cfg(unix)]
    pub fn stdout() -> Log {
        use std::os::fd::AsFd;
        let out = std::io::stdout().as_fd().try_clone_to_owned().map(File::from).ok();
        Log { file: out.map(Mutex::new), path: None, counts: Mutex::default(), print_denials: false }
    }

    pub fn record(&self, event: &Event) {
        self.note(event.allowed, &event.host, &event.line(), &event.method, &event.target, &event.reason);
    }

    /// Records a line another proxy wrote with [`Event::line`] (a session's companion): written as
    /// it is, control characters removed, counted, and printed when it is a denial and denials are
    /// shown. Anything else is ignored.
    pub fn record_line(&self, line: &str) {
        let line: String = line.chars().filter(|c| *c == '\t' || !c.is_control()).collect();
        let f: Vec<&str> = line.splitn(5, '\t').collect();
        let [_, verdict, target, method, reason] = f[..] else { return };
        let allowed = match verdict {
            "allow" => true,
            "deny" => false,
            _ => return,
        };
        let host = match target.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => target.rsplit_once(':').map_or(target, |(h, _)| h),
        };
        self.note(allowed, host, &line, method, target, reason);
    }

    fn note(&self, allowed: bool, host: &str, line: &str, method: &str, target: &str, reason: &str) {
        {
            let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            if allowed {
                c.allowed += 1;
            } else {
                c.denied += 1;
                *c.denied_hosts.entry(host.to_string()).or_default() += 1;
            }
        }
        if let Some(f) = &self.file {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            // One write per line: two logs on one stream (the companion's proxy and relay) never
            // interleave inside a line.
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
        if self.print_denials && !allowed {
            eprint!("codex-box: proxy denied {method} {target}: {reason}\r\n");
        }
    }

    pub fn summary(&self) -> Summary {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut top: Vec<(String, u64)> = c.denied_hosts.iter().map(|(h, n)| (h.clone(), *n)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(5);
        Summary { allowed: c.allowed, denied: c.denied, top_denied: top, path: self.path.clone() }
    }
}

/// A field the client chose, reduced to characters no shell or log reader treats specially
/// (an HTTP method token may contain `` ` ``, `$`, `|`, `'`): others become `?`.
fn plain(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "-.:[]_".contains(c) { c } else { '?' }).collect()
}

/// The directory of the log `path`: its parent (the state directory, the user's path) is created
/// and followed like any path; the log's own directory is created or opened through a handle,
/// never through a link, and made private (mode 0700) when codex-box may.
#[cfg(unix)]
fn log_dir(path: &Path) -> Result<crate::fs_handle::Dir, crate::fs_handle::FsError> {
    use crate::fs_handle::{Dir, FsError};
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let (Some(up), Some(name)) = (dir.parent().filter(|u| !u.as_os_str().is_empty()), dir.file_name()) else {
        return Dir::open_trusted(dir);
    };
    std::fs::create_dir_all(up).map_err(|source| FsError::Create { path: up.to_path_buf(), source })?;
    let (dir, _) = Dir::open_trusted(up)?.create_dir(name, 0o700, None)?;
    let _ = dir.set_mode(0o700);
    Ok(dir)
}

/// Creates `path`, failing when anything is already there.
#[cfg(not(unix))]
fn open_new(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

/// `dir/name.log` → `dir/name.N.log`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{n}"),
    };
    path.with_file_name(name)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a time after 1970.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ev(host: &str, allowed: bool) -> Event {
        Event {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_651_200),
            allowed,
            target: format!("{host}:443"),
            host: host.into(),
            method: "CONNECT".into(),
            reason: if allowed { "allow a.test".into() } else { "not in the allowlist".into() },
        }
    }

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_651_200 + 3661)), "2026-11-26T01:01:01Z");
    }

    #[test]
    fn a_companions_lines_are_recorded_as_the_events_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p").join("s.log");
        let (direct, relayed) = (Log::memory(false), Log::file(&path, false).unwrap());
        let v6 = Event { target: "[2001:db8::1]:443".into(), ..ev("2001:db8::1", false) };
        for e in [ev("a.test", true), ev("b.test", false), ev("b.test", false), v6] {
            direct.record(&e);
            relayed.record_line(&e.line());
        }
        // Not a decision line, and a line with a terminal escape: ignored, and cleaned.
        relayed.record_line("codex-box companion: ready");
        relayed.record_line("2026-11-26T00:00:00Z\tdeny\tc.test:443\tCONNECT\tno \u{1b}[2Jrule");
        direct.record(&Event { reason: "no [2Jrule".into(), ..ev("c.test", false) });
        assert_eq!(Summary { path: None, ..relayed.summary() }, direct.summary());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.ends_with("c.test:443\tCONNECT\tno [2Jrule\n"), "{text}");
    }

    #[test]
    fn client_chosen_fields_are_plain_in_the_log() {
        let e = Event { method: "`reboot`$(x)|y".into(), target: "a.test:80".into(), ..ev("a.test", false) };
        assert_eq!(
            e.line(),
            "2026-11-26T00:00:00Z\tdeny\ta.test:80\t?reboot??(x)?y\tnot in the allowlist".replace("(x)", "?x?")
        );
    }

    #[test]
    fn every_decision_is_a_line_and_counted() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("proxy/codex_x.log");
        let log = Log::file(&path, false).unwrap();
        log.record(&ev("a.test", true));
        for h in ["b.test", "c.test", "b.test"] {
            log.record(&ev(h, false));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "2026-11-26T00:00:00Z\tallow\ta.test:443\tCONNECT\tallow a.test");
        assert_eq!(lines[1], "2026-11-26T00:00:00Z\tdeny\tb.test:443\tCONNECT\tnot in the allowlist");
        assert_eq!(lines.len(), 4);
        let s = log.summary();
        assert_eq!((s.allowed, s.denied), (1, 3));
        assert_eq!(
            s.to_string(),
            format!("proxy: 1 allowed, 3 denied; denied most: b.test (2), c.test (1); log: {}", path.display())
        );
        assert_eq!(Log::memory(false).summary().to_string(), "proxy: 0 allowed, 0 denied");
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_link_or_an_old_log_is_never_written() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("bashrc");
        std::fs::write(&victim, "original\n").unwrap();
        let path = t.path().join("proxy/sandbox-7.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        std::fs::write(t.path().join("proxy/sandbox-7.1.log"), "an older run\n").unwrap();
        let log = Log::file(&path, false).unwrap();
        log.record(&ev("evil.test", false));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original\n");
        assert_eq!(std::fs::read_to_string(t.path().join("proxy/sandbox-7.1.log")).unwrap(), "an older run\n");
        let used = t.path().join("proxy/sandbox-7.2.log");
        assert_eq!(log.summary().path.as_deref(), Some(used.as_path()));
        assert!(std::fs::read_to_string(&used).unwrap().contains("evil.test"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&used).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_planted_as_the_log_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let elsewhere = t.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o751)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, t.path().join("proxy")).unwrap();
        let err = Log::file(&t.path().join("proxy/sandbox-7.log"), false).err().expect("refused");
        assert!(err.to_string().contains("proxy/sandbox-7.log"), "{err}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing made through the link");
        assert_eq!(std::fs::metadata(&elsewhere).unwrap().permissions().mode() & 0o777, 0o751, "mode untouched");
    }
}
