//! A tiny authoritative DNS server for tests and benches: UDP on 127.0.0.1 (random port), A, AAAA
//! and CNAME records from a table, one TTL, and an optional delay before every answer. Each query is
//! answered on its own thread, so delayed answers overlap. Unknown names get NXDOMAIN; known names
//! without the asked type get an empty NOERROR answer.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Rdata {
    Addr(IpAddr),
    Cname(String),
}

#[derive(Debug, Clone, Default)]
pub struct Zone {
    /// (name without trailing dot, lowercase; data; TTL if not the zone's)
    pub records: Vec<(String, Rdata, Option<u32>)>,
    pub ttl: u32,
    pub delay: Duration,
}

impl Zone {
    pub fn new(ttl: u32) -> Self {
        Zone { records: Vec::new(), ttl, delay: Duration::ZERO }
    }

    pub fn addr(mut self, name: &str, ip: &str) -> Self {
        self.records.push((name.to_string(), Rdata::Addr(ip.parse().expect("test IP")), None));
        self
    }

    pub fn cname(self, name: &str, target: &str) -> Self {
        self.cname_ttl(name, target, None)
    }

    pub fn cname_ttl(mut self, name: &str, target: &str, ttl: Option<u32>) -> Self {
        self.records.push((name.to_string(), Rdata::Cname(target.to_string()), ttl));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

pub struct TestDns {
    pub addr: SocketAddr,
    pub queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    zone: Arc<std::sync::RwLock<Arc<Zone>>>,
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl TestDns {
    pub fn start(zone: Zone) -> TestDns {
        TestDns::start_on(zone, "127.0.0.1")
    }

    /// The server on `ip` (an address of this host, e.g. a test network's gateway, which the
    /// network's containers reach), port chosen by the kernel.
    pub fn start_on(zone: Zone, ip: &str) -> TestDns {
        let socket = UdpSocket::bind((ip, 0)).expect("bind the test DNS server");
        socket.set_read_timeout(Some(Duration::from_millis(100))).expect("set timeout");
        let addr = socket.local_addr().expect("local addr");
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(std::sync::RwLock::new(Arc::new(zone)));
        let (q, s, z) = (queries.clone(), stop.clone(), shared.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::SeqCst) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                q.fetch_add(1, Ordering::SeqCst);
                let query = buf[..n].to_vec();
                let zone = z.read().expect("zone lock").clone();
                let socket = socket.try_clone().expect("clone socket");
                std::thread::spawn(move || {
                    std::thread::sleep(zone.delay);
                    if let Some(reply) = answer(&zone, &query) {
                        let _ = socket.send_to(&reply, peer);
                    }
                });
            }
        });
        TestDns { addr, queries, stop, zone: shared }
    }

    /// Replaces the records served from now on.
    pub fn set_zone(&self, zone: Zone) {
        *self.zone.write().expect("zone lock") = Arc::new(zone);
    }
}

/// A socket address with no server behind it (bound, read, then closed).
pub fn dead_address() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr")
}

fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// Builds the reply to one query, or None for a packet that is not a query.
pub fn answer(zone: &Zone, query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    // Question: labels, then type and class.
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question = &query[12..pos + 4];
    let qname = labels.join(".");

    let mut answers: Vec<(String, u16, Vec<u8>, u32)> = Vec::new();
    let mut current = qname.clone();
    let mut exists = false;
    for _ in 0..8 {
        let records: Vec<(&Rdata, u32)> = zone
            .records
            .iter()
            .filter(|(n, _, _)| *n == current)
            .map(|(_, r, ttl)| (r, ttl.unwrap_or(zone.ttl)))
            .collect();
        exists |= !records.is_empty();
        if let Some((Rdata::Cname(target), ttl)) = records.iter().find(|(r, _)| matches!(r, Rdata::Cname(_))) {
            let mut rdata = Vec::new();
            encode_name(target, &mut rdata);
            answers.push((current.clone(), 5, rdata, *ttl));
            current = target.clone();
            continue;
        }
        for (r, ttl) in records {
            match (r, qtype) {
                (Rdata::Addr(IpAddr::V4(ip)), 1) => answers.push((current.clone(), 1, ip.octets().to_vec(), ttl)),
                (Rdata::Addr(IpAddr::V6(ip)), 28) => answers.push((current.clone(), 28, ip.octets().to_vec(), ttl)),
                _ => {}
            }
        }
        break;
    }
    let rcode = if exists { 0 } else { 3 };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[0..2]);
    out.push(0x84 | (query[2] & 0x01)); // QR, AA, RD copied
    out.push(0x80 | rcode); // RA, rcode
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for (name, rtype, rdata, ttl) in answers {
        encode_name(&name, &mut out);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}
