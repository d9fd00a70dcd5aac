//! A stand-in for the engine's socket that the test can take away: every connection to it is
//! relayed to the real engine, until [`EngineProxy::cut`] closes them all and the socket with them —
//! what codex-box sees when the engine stops, restarts, or its VM or the connection to it goes,
//! while the session's container stays on the real engine.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct EngineProxy {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    conns: Arc<Mutex<Vec<UnixStream>>>,
    stop: Arc<AtomicBool>,
}

/// The real engine's socket, as the tests find it (`DOCKER_HOST`, else the usual sockets).
fn engine_socket() -> PathBuf {
    let found = codex_box::docker::discover::find_here(None, &codex_box::host_env::HostEnv::from_process())
        .expect("an engine to relay to");
    match found.address {
        codex_box::docker::discover::Address::Unix(p) => p,
        other => panic!("the engine proxy relays to a unix socket, not {other}"),
    }
}

fn pump(mut from: UnixStream, mut to: UnixStream) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl EngineProxy {
    pub fn start() -> Self {
        let real = engine_socket();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let conns: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (conns.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(up) = UnixStream::connect(&real) else { continue };
                        let mut held = c.lock().unwrap();
                        held.push(client.try_clone().unwrap());
                        held.push(up.try_clone().unwrap());
                        let (c2, u2) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                        std::thread::spawn(move || pump(client, up));
                        std::thread::spawn(move || pump(u2, c2));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(10))
                    }
                    Err(_) => break,
                }
            }
        });
        EngineProxy { _dir: dir, path, conns, stop }
    }

    /// `unix://…` of the stand-in.
    pub fn url(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// The engine goes away: no new connection, every open one closed.
    pub fn cut(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_file(&self.path);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
