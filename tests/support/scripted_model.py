#!/usr/bin/env python3
"""A scripted stand-in for the model API (the Responses API over SSE), for end-to-end tests.

It serves POST .../responses. The first request of a conversation is answered with one call of the
shell tool the request offers, running the command in $SCRIPTED_COMMAND (or the file named by
$SCRIPTED_COMMAND_FILE); a request that carries that call's output is answered with a final message.
Every request body is written to $SCRIPTED_LOG_DIR/request-N.json, so a test can see what reached the
"model". Plain HTTP, or HTTPS when $SCRIPTED_CERT and $SCRIPTED_KEY are set. Listens on
$SCRIPTED_ADDR (default [::]:443 with TLS, else [::]:80); stops after $SCRIPTED_MAX_REQUESTS.
"""
import http.server, json, os, socket, socketserver, ssl, sys, threading

LOG = os.environ.get("SCRIPTED_LOG_DIR", "/tmp")
MAX = int(os.environ.get("SCRIPTED_MAX_REQUESTS", "50"))
FINAL = "scripted: done"
count = 0
lock = threading.Lock()


def command():
    f = os.environ.get("SCRIPTED_COMMAND_FILE")
    if f:
        with open(f) as fh:
            return fh.read().strip()
    return os.environ.get("SCRIPTED_COMMAND", "echo scripted")


def tool_call(tools, cmd):
    """One call of whichever shell tool Codex offered, with its own argument shape."""
    names = {t.get("name") or t.get("type"): t for t in tools}
    if "shell_command" in names:
        return {"type": "function_call", "name": "shell_command", "call_id": "call_1",
                "arguments": json.dumps({"command": cmd, "timeout_ms": 60000})}
    if "exec_command" in names:
        return {"type": "function_call", "name": "exec_command", "call_id": "call_1",
                "arguments": json.dumps({"cmd": cmd, "yield_time_ms": 30000})}
    if "shell" in names:
        return {"type": "function_call", "name": "shell", "call_id": "call_1",
                "arguments": json.dumps({"command": ["sh", "-c", cmd], "timeout_ms": 60000})}
    if "local_shell" in names:
        return {"type": "local_shell_call", "call_id": "call_1", "status": "completed",
                "action": {"type": "exec", "command": ["sh", "-c", cmd]}}
    raise ValueError("no shell tool offered: %s" % sorted(names))


def sse(events):
    out = []
    for e in events:
        out.append("event: %s\ndata: %s\n\n" % (e["type"], json.dumps(e)))
    return "".join(out).encode()


def answer(body):
    items = body.get("input") or []
    done = any(i.get("type") in ("function_call_output", "local_shell_call_output") for i in items
               if isinstance(i, dict))
    rid = "resp_%d" % count
    if done:
        item = {"type": "message", "role": "assistant", "id": "msg_%d" % count, "status": "completed",
                "content": [{"type": "output_text", "text": FINAL, "annotations": []}]}
    else:
        item = tool_call(body.get("tools") or [], command())
    usage = {"input_tokens": 1, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 1,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 2}
    return sse([
        {"type": "response.created", "response": {"id": rid}},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": {"id": rid, "usage": usage}},
    ])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        sys.stderr.write("scripted-model: %s %s\n" % (self.command, self.path))

    def reply(self, code, ctype, data):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            return self.reply(200, "application/json", b'{"models": [], "data": []}')
        self.reply(404, "text/plain", b"not here\n")

    def do_POST(self):
        global count
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n)
        with lock:
            count += 1
            k = count
        with open(os.path.join(LOG, "request-%d.json" % k), "wb") as fh:
            fh.write(raw)
        # What arrived as the credential (a test checks that the real key did, from the relay).
        with open(os.path.join(LOG, "auth-%d.txt" % k), "w") as fh:
            fh.write(self.headers.get("Authorization") or "")
        if not self.path.rstrip("/").endswith("/responses"):
            return self.reply(404, "text/plain", b"not here\n")
        try:
            data = answer(json.loads(raw))
        except Exception as e:  # a test failure should say why
            return self.reply(400, "text/plain", ("scripted model: %s\n" % e).encode())
        self.reply(200, "text/event-stream", data)
        if k >= MAX:
            threading.Thread(target=self.server.shutdown, daemon=True).start()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    tls = os.environ.get("SCRIPTED_CERT") and os.environ.get("SCRIPTED_KEY")
    host, _, port = os.environ.get("SCRIPTED_ADDR", "[::]:%d" % (443 if tls else 80)).rpartition(":")
    srv = Server((host.strip("[]"), int(port)), Handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.environ["SCRIPTED_CERT"], os.environ["SCRIPTED_KEY"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    sys.stderr.write("scripted-model: listening on %s\n" % (srv.server_address,))
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
