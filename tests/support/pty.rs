//! A program on a pseudo-terminal that a test can read and type into, answering the terminal queries
//! a full-screen program makes at start (cursor position, device attributes) as a terminal would.

use std::io::{Read, Write};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Pty {
    pub child: Child,
    master: std::fs::File,
    seen: Arc<Mutex<Vec<u8>>>,
    size: (u16, u16),
}

impl Pty {
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> Pty {
        let ws = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&ws), None).unwrap();
        let slave = std::fs::File::from(pty.slave);
        let child =
            cmd.stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave).spawn().unwrap();
        let master = std::fs::File::from(pty.master);
        let (mut reader, mut answerer) = (master.try_clone().unwrap(), master.try_clone().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let all = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                // Cursor position report and primary device attributes.
                if chunk.windows(4).any(|w| w == b"\x1b[6n") {
                    let _ = answerer.write_all(format!("\x1b[{rows};1R").as_bytes());
                }
                if chunk.windows(3).any(|w| w == b"\x1b[c") || chunk.windows(4).any(|w| w == b"\x1b[0c") {
                    let _ = answerer.write_all(b"\x1b[?62;22c");
                }
                all.lock().unwrap().extend_from_slice(chunk);
            }
        });
        Pty { child, master, seen, size: (rows, cols) }
    }

    /// The terminal's screen as a terminal would show it now (a VT100 emulator fed with all output).
    pub fn screen_text(&self) -> String {
        let mut parser = vt100::Parser::new(self.size.0.try_into().unwrap(), self.size.1.try_into().unwrap(), 0);
        parser.process(&self.seen.lock().unwrap());
        parser.screen().contents()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.master.write_all(bytes);
    }

    /// Waits until `cond` holds, at most `secs` seconds.
    pub fn wait_for(&self, secs: u64, mut cond: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        cond()
    }

    /// Waits at most `secs` for the program to exit, leaving it running otherwise; how it exited.
    pub fn wait_exit_within(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Waits for the program to exit (killing it after `secs`); its exit code, if it exited by itself.
    pub fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}
