//! Shell and Python pieces shared by the proxy tests of both modes (container `--egress proxy` and
//! native `sandbox --allow-domain`): the test host's TLS responder, the probes run inside the
//! sandbox, and Java's HTTP client. Names: allowed.test (allowed), other.test (not), one address.
#![allow(dead_code)]

/// Python, in the test host: a thread answering `GOT-HELLO` on port 443 to anything that starts
/// like a TLS record (a ClientHello forwarded by the proxy).
pub const TLS_RESPONDER_PY: &str = r#"
def tls():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 443)); s.listen(16)
    while True:
        c, _ = s.accept(); c.settimeout(5)
        try:
            if c.recv(16384)[:1] == b'\x16': c.sendall(b'GOT-HELLO')
        except OSError: pass
        c.close()
threading.Thread(target=tls, daemon=True).start()
"#;

/// Shell: `probe ARGS…` prints `OPEN ARGS` or `CLOSED ARGS` for a curl of ARGS.
pub const PROBE_SH: &str = r#"
probe() { if curl -fsS -o /dev/null --max-time 5 "$@" 2>/dev/null; then echo "OPEN $*"; else echo "CLOSED $*"; fi; }
"#;

/// Python source, run inside the sandbox with `HTTPS_PROXY` set: CONNECT tunnels with a matching and
/// a lying SNI (`TLS CONNECT-HOST/SNI REPLY …|CLOSED|REFUSED …`), and a function `head(socket)`.
pub const TUNNELS_PY: &str = r#"
import os, socket, ssl
h, p = os.environ['HTTPS_PROXY'].split('//')[1].rsplit(':', 1)
def hello(n):
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    s = ssl.create_default_context().wrap_bio(i, o, server_hostname=n)
    try: s.do_handshake()
    except ssl.SSLWantReadError: pass
    return o.read()
def head(s):
    r = b''
    while not r.endswith(b'\r\n\r\n'):
        c = s.recv(1)
        if not c: break
        r += c
    return r
def tunnel(host, sni):
    s = socket.create_connection((h, int(p)), timeout=5)
    s.sendall(f'CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n'.encode())
    r = head(s)
    if not r.startswith(b'HTTP/1.1 200'):
        return 'REFUSED ' + r.split(b'\r\n')[0].decode()
    s.sendall(hello(sni))
    try: data = s.recv(100)
    except OSError: data = b''
    return 'REPLY ' + data.decode() if data else 'CLOSED'
print('TLS allowed.test/allowed.test', tunnel('allowed.test', 'allowed.test'))
print('TLS allowed.test/other.test', tunnel('allowed.test', 'other.test'))
print('TLS other.test/other.test', tunnel('other.test', 'other.test'))
"#;

/// The lines [`TUNNELS_PY`] prints when the proxy checks SNI against the CONNECT host.
pub const TUNNELS_EXPECTED: [&str; 3] = [
    "TLS allowed.test/allowed.test REPLY GOT-HELLO",
    "TLS allowed.test/other.test CLOSED",
    "TLS other.test/other.test REFUSED HTTP/1.1 403 Forbidden",
];

/// Shell: Java's own HTTP client fetching http://allowed.test/ (prints `JAVA 200`).
pub const JAVA_SH: &str = r#"
cat > /tmp/Fetch.java <<'JAVA'
public class Fetch { public static void main(String[] a) throws Exception {
  var c = (java.net.HttpURLConnection) new java.net.URI(a[0]).toURL().openConnection();
  System.out.println("JAVA " + c.getResponseCode()); } }
JAVA
java /tmp/Fetch.java http://allowed.test/ 2>/dev/null || echo "JAVA failed"
"#;
