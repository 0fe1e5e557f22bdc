#!/usr/bin/env python3
"""HTTP/1.1 conformance of usnet-httpd, checked with curl, python's
http.client and raw sockets (for what clients do not send on their own:
pipelines, malformed and oversized requests).  One PASS/FAIL line per check.

usage: conformance.py --label L HOST PORT ROOT [--expect-ip IP]
ROOT is the directory the server serves (written by make_root.py); with
--expect-ip, curl must report that it talked to IP (the server's address
on the stack: proof that the traffic went through it)."""
import argparse
import email.utils
import hashlib
import http.client
import os
import socket
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--label", required=True)
ap.add_argument("--expect-ip")
ap.add_argument("--idle-timeout", type=int, help="the server's --idle-timeout: check it")
ap.add_argument("host")
ap.add_argument("port", type=int)
ap.add_argument("root")
args = ap.parse_args()
HOST, PORT, ROOT = args.host, args.port, args.root
failures = 0


def check(name, fn):
    global failures
    try:
        fn()
        print("PASS %s-%s" % (args.label, name), flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported the same way
        failures += 1
        why = (str(e) or type(e).__name__).replace("\n", " ")[:300]
        print("FAIL %s-%s: %s" % (args.label, name, why), flush=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def content(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def conn():
    return http.client.HTTPConnection(HOST, PORT, timeout=10)


def get(path, method="GET", headers=None):
    c = conn()
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


# ---- a response reader of the test's own (for raw exchanges) ---------------

class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            self.eof = True
        self.buf += d
        return bool(d)

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                raise AssertionError("connection closed in a head: %r" % self.buf[:80])
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def response(self, head_request=False):
        """(status, {lower name: value}, body)"""
        status_line = self.line()
        parts = status_line.split(b" ", 2)
        expect(len(parts) >= 2 and parts[0] == b"HTTP/1.1" and len(parts[1]) == 3 and parts[1].isdigit(),
               "bad status line %r" % status_line)
        fields = {}
        while True:
            l = self.line()
            if not l:
                break
            k, _, v = l.partition(b":")
            expect(k and k == k.strip() and b" " not in k, "bad field line %r" % l)
            key = k.decode().lower()
            expect(key not in fields, "field %s twice" % key)
            fields[key] = v.strip().decode("latin-1")
        status = int(parts[1])
        n = 0 if head_request or status == 304 else int(fields.get("content-length", "0"))
        while len(self.buf) < n:
            if not self.fill():
                raise AssertionError("connection closed in a body")
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, fields, body

    def closed(self, timeout=5):
        """True when the peer closes (after what was read) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while not self.eof:
                if not self.fill():
                    return self.buf == b""
                if self.buf:
                    return False
        except socket.timeout:
            return False
        except ConnectionResetError:
            return self.buf == b""
        return self.buf == b""


def raw(data, timeout=10):
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    if data:
        s.sendall(data)
    return s, Reader(s)


def req(path, extra=b"", method=b"GET", version=b"HTTP/1.1"):
    return method + b" " + path + b" " + version + b"\r\nHost: t\r\n" + extra + b"\r\n"


# ---- the checks -------------------------------------------------------------

def t_get():
    r, body = get("/index.html")
    expect(r.status == 200, "status %d" % r.status)
    expect(body == content("index.html"), "body differs")
    expect(r.getheader("Content-Type") == "text/html; charset=utf-8", r.getheader("Content-Type"))
    expect(int(r.getheader("Content-Length")) == len(body), "Content-Length")
    expect(r.getheader("ETag", "").startswith('"'), "no strong ETag")
    expect(r.getheader("Last-Modified") == "Sun, 13 Sep 2020 12:26:40 GMT", r.getheader("Last-Modified"))
    date = email.utils.parsedate_to_datetime(r.getheader("Date"))
    expect(abs(date.timestamp() - time.time()) < 120, "Date is off: %s" % r.getheader("Date"))


def t_index():
    r, body = get("/")
    expect(r.status == 200 and body == content("index.html"), "/ is not index.html")
    r, body = get("/docs/")
    expect(r.status == 200 and body == content("docs/index.html"), "/docs/ is not its index.html")
    r, body = get("/docs")
    expect(r.status == 301 and r.getheader("Location") == "/docs/", "/docs: %d %s" % (r.status, r.getheader("Location")))
    r, _ = get("/empty-dir/")
    expect(r.status == 404, "a directory without index.html: %d" % r.status)


def t_mime():
    want = {"/style.css": "text/css; charset=utf-8", "/app.js": "text/javascript; charset=utf-8",
            "/data.json": "application/json", "/pic.png": "image/png",
            "/noext": "application/octet-stream", "/one.bin": "application/octet-stream",
            "/docs/deep/page.txt": "text/plain; charset=utf-8"}
    for path, t in want.items():
        r, body = get(path)
        expect(r.status == 200 and r.getheader("Content-Type") == t, "%s: %s" % (path, r.getheader("Content-Type")))
        expect(body == content(path[1:]), "%s: body differs" % path)


def t_escaped_name():
    r, body = get("/space%20name.txt")
    expect(r.status == 200 and body == content("space name.txt"), "status %d" % r.status)
    r, body = get("/%73tyle.css?v=3")
    expect(r.status == 200 and body == content("style.css"), "escape + query: %d" % r.status)


def t_empty_file():
    r, body = get("/empty.txt")
    expect(r.status == 200 and body == b"" and r.getheader("Content-Length") == "0", "status %d" % r.status)


def t_head():
    r, body = get("/one.bin", "HEAD")
    expect(r.status == 200 and body == b"", "status %d, %d body bytes" % (r.status, len(body)))
    expect(r.getheader("Content-Length") == "1024", "Content-Length %s" % r.getheader("Content-Length"))
    r, _ = get("/missing", "HEAD")
    expect(r.status == 404, "HEAD of a missing file: %d" % r.status)


def t_range():
    data = content("one.bin")
    r, body = get("/one.bin", headers={"Range": "bytes=10-19"})
    expect(r.status == 206 and body == data[10:20], "10-19: %d" % r.status)
    expect(r.getheader("Content-Range") == "bytes 10-19/1024", r.getheader("Content-Range"))
    expect(r.getheader("Content-Length") == "10", "Content-Length %s" % r.getheader("Content-Length"))
    r, body = get("/one.bin", headers={"Range": "bytes=-100"})
    expect(r.status == 206 and body == data[-100:], "suffix: %d" % r.status)
    r, body = get("/one.bin", headers={"Range": "bytes=1000-"})
    expect(r.status == 206 and body == data[1000:] and r.getheader("Content-Range") == "bytes 1000-1023/1024", "open end")
    r, body = get("/one.bin", headers={"Range": "bytes=1000-5000"})
    expect(r.status == 206 and body == data[1000:], "last past the end is clipped: %d" % r.status)
    r, body = get("/one.bin", headers={"Range": "bytes=0-0,5-6"})
    expect(r.status == 200 and body == data, "several ranges: the whole file, got %d" % r.status)
    r, body = get("/one.bin", headers={"Range": "lines=1-2"})
    expect(r.status == 200 and body == data, "unknown unit: %d" % r.status)
    r, body = get("/one.bin", "HEAD", headers={"Range": "bytes=0-9"})
    expect(r.status == 200, "HEAD ignores Range: %d" % r.status)


def t_range_unsatisfiable():
    r, _ = get("/one.bin", headers={"Range": "bytes=1024-"})
    expect(r.status == 416 and r.getheader("Content-Range") == "bytes */1024", "%d %s" % (r.status, r.getheader("Content-Range")))
    r, _ = get("/empty.txt", headers={"Range": "bytes=0-"})
    expect(r.status == 416, "empty file: %d" % r.status)


def t_if_modified_since():
    r, _ = get("/style.css")
    lm = r.getheader("Last-Modified")
    r, body = get("/style.css", headers={"If-Modified-Since": lm})
    expect(r.status == 304 and body == b"", "same date: %d" % r.status)
    expect(r.getheader("ETag") and r.getheader("Date"), "304 without ETag or Date")
    r, body = get("/style.css", headers={"If-Modified-Since": "Sat, 12 Sep 2020 00:00:00 GMT"})
    expect(r.status == 200 and body == content("style.css"), "older date: %d" % r.status)
    r, _ = get("/style.css", headers={"If-Modified-Since": "Sunday, 13-Sep-20 12:26:40 GMT"})
    expect(r.status == 304, "RFC 850 date: %d" % r.status)
    r, _ = get("/style.css", headers={"If-Modified-Since": "Sun Sep 13 12:26:40 2020"})
    expect(r.status == 304, "asctime date: %d" % r.status)
    r, _ = get("/style.css", headers={"If-Modified-Since": "yesterday"})
    expect(r.status == 200, "an invalid date is ignored: %d" % r.status)


def t_etag():
    r, _ = get("/app.js")
    tag = r.getheader("ETag")
    r, body = get("/app.js", headers={"If-None-Match": tag})
    expect(r.status == 304 and body == b"" and r.getheader("ETag") == tag, "same tag: %d" % r.status)
    r, _ = get("/app.js", headers={"If-None-Match": '"other", W/' + tag})
    expect(r.status == 304, "weak match in a list: %d" % r.status)
    r, _ = get("/app.js", headers={"If-None-Match": "*"})
    expect(r.status == 304, "*: %d" % r.status)
    r, body = get("/app.js", headers={"If-None-Match": '"nope"'})
    expect(r.status == 200 and body == content("app.js"), "other tag: %d" % r.status)
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)
    r, _ = get("/app.js", headers={"If-None-Match": '"nope"', "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})
    expect(r.status == 200, "If-None-Match first: %d" % r.status)
    r, _ = get("/app.js", headers={"If-Match": '"nope"'})
    expect(r.status == 412, "If-Match: %d" % r.status)
    data = content("one.bin")
    tag = get("/one.bin")[0].getheader("ETag")
    r, body = get("/one.bin", headers={"Range": "bytes=0-9", "If-Range": tag})
    expect(r.status == 206 and body == data[:10], "If-Range same tag: %d" % r.status)
    r, body = get("/one.bin", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    expect(r.status == 200 and body == data, "If-Range other tag: %d" % r.status)


def t_pipeline():
    paths = [b"/style.css", b"/one.bin", b"/missing", b"/app.js", b"/docs/", b"/data.json"] * 4
    s, rd = raw(b"".join(req(p) for p in paths))
    for p in paths:
        status, f, body = rd.response()
        if p == b"/missing":
            expect(status == 404, "%s: %d" % (p, status))
            continue
        rel = p.decode()[1:] + ("index.html" if p.endswith(b"/") else "")
        expect(status == 200 and body == content(rel), "%s: %d, answers out of order" % (p, status))
    # still open: one more on the same connection
    s.sendall(req(b"/noext"))
    status, _, body = rd.response()
    expect(status == 200 and body == content("noext"), "after the pipeline")
    s.close()


def t_pipeline_split():
    """A pipeline cut at every few bytes still gets each answer once."""
    data = b"".join(req(p) for p in [b"/style.css", b"/app.js", b"/one.bin"] * 3)
    s, rd = raw(b"")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(0, len(data), 7):
        s.send(data[i:i + 7])
        time.sleep(0.001)
    for p in [b"style.css", b"app.js", b"one.bin"] * 3:
        status, _, body = rd.response()
        expect(status == 200 and body == content(p.decode()), "%s: %d" % (p, status))
    s.close()


def t_keep_alive():
    c = conn()
    c.request("GET", "/style.css")
    c.getresponse().read()
    sock = c.sock
    for i in range(30):
        c.request("GET" if i % 2 else "HEAD", "/one.bin")
        r = c.getresponse()
        r.read()
        expect(r.status == 200, "request %d: %d" % (i, r.status))
        expect(c.sock is sock and not r.will_close, "request %d: the connection was not kept" % i)
    c.close()


def t_not_found():
    for p in ["/missing", "/docs/deep/", "/link-outside", "/index.html/", "//index.html"]:
        r, _ = get(p)
        expect(r.status == 404, "%s: %d" % (p, r.status))


def t_links():
    r, body = get("/link-inside.css")
    expect(r.status == 200 and body == content("style.css"), "a link inside the root: %d" % r.status)


def t_dot_dot():
    for p in [b"/../etc/passwd", b"/docs/../index.html", b"/%2e%2e/etc/passwd", b"/docs/%2E%2E/%2e%2E/x",
              b"/./index.html", b"/docs/..", b"..", b"/%00", b"/%zz", b"*"]:
        s, rd = raw(req(p))
        status, _, body = rd.response()
        expect(status == 400, "%s: %d" % (p, status))
        expect(b"root:" not in body, "%s: served something outside the root" % p)
        s.close()


def t_method_not_allowed():
    # the body of a POST is skipped; the connection carries on
    s, rd = raw(b"POST /index.html HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world" + req(b"/style.css"))
    status, f, _ = rd.response()
    expect(status == 405 and f.get("allow") == "GET, HEAD", "%d, Allow %s" % (status, f.get("allow")))
    status, _, body = rd.response()
    expect(status == 200 and body == content("style.css"), "after the skipped body: %d" % status)
    s.close()
    for m in ["PUT", "DELETE", "OPTIONS"]:
        r, _ = get("/index.html", m)
        expect(r.status == 405 and r.getheader("Allow") == "GET, HEAD", "%s: %d" % (m, r.status))
    r, _ = get("/index.html", "BREW")
    expect(r.status == 501, "an unknown method: %d" % r.status)
    # a body held back for "100 Continue" may never come: answered, then closed
    s, rd = raw(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
    status, f, _ = rd.response()
    expect(status == 405 and f.get("connection") == "close" and rd.closed(), "Expect: 100-continue: %d" % status)
    s.close()


def expect_final(data, want, what):
    """data gets status `want` and the connection is closed after it."""
    s, rd = raw(data)
    try:
        status, f, _ = rd.response()
        expect(status == want, "%s: %d, not %d" % (what, status, want))
        expect(f.get("connection") == "close", "%s: no Connection: close" % what)
        expect(rd.closed(), "%s: the connection stayed open" % what)
    finally:
        s.close()


def t_header_too_large():
    expect_final(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n", 431, "one 10 KB field")
    expect_final(b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431, "200 fields")


def t_header_flood():
    """A megabyte of header without an end: 431 long before it is all sent,
    so the server did not buffer it."""
    s, rd = raw(b"GET / HTTP/1.1\r\nHost: t\r\nX-Flood: ")
    sent = 0
    try:
        while sent < (1 << 20):
            s.sendall(b"x" * 4096)
            sent += 4096
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, _, _ = rd.response()
    expect(status == 431, "status %d" % status)
    s.close()


def t_uri_too_long():
    expect_final(req(b"/" + b"a" * 5000), 414, "a 5000-byte target")


def t_bad_request():
    for data in [b"GET/ HTTP/1.1\r\nHost: t\r\n\r\n", b"GET / HTTP/1.1 junk\r\nHost: t\r\n\r\n",
                 b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n", b"GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",
                 b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GET / HTTP/1.1\rHost: t\r\n\r\n",
                 b"G\x00T / HTTP/1.1\r\n\r\n"]:
        expect_final(data, 400, repr(data[:30]))


def t_version():
    expect_final(b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505, "HTTP/2.0")
    s, rd = raw(b"GET /style.css HTTP/1.9\r\nHost: t\r\n\r\n")
    status, _, _ = rd.response()
    expect(status == 200, "HTTP/1.9 is served as 1.1: %d" % status)
    s.close()


def t_connection_close():
    s, rd = raw(req(b"/style.css", b"Connection: close\r\n") + req(b"/app.js"))
    status, f, body = rd.response()
    expect(status == 200 and body == content("style.css"), "status %d" % status)
    expect(f.get("connection") == "close", "no Connection: close in the answer")
    expect(rd.closed(), "a request after Connection: close was answered, or the connection stayed open")
    s.close()


def t_http10():
    s, rd = raw(b"GET /style.css HTTP/1.0\r\n\r\n")
    status, f, body = rd.response()
    expect(status == 200 and body == content("style.css"), "status %d" % status)
    expect(f.get("connection") == "close" and rd.closed(), "HTTP/1.0 without keep-alive stayed open")
    s.close()
    s, rd = raw(b"GET /style.css HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, f, _ = rd.response()
    expect(status == 200 and f.get("connection") == "keep-alive", "keep-alive not confirmed")
    s.sendall(b"HEAD /app.js HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, f, body = rd.response(head_request=True)
    expect(status == 200 and body == b"", "second HTTP/1.0 request: %d" % status)
    s.close()
    c = conn()
    c._http_vsn, c._http_vsn_str = 10, "HTTP/1.0"
    c.request("GET", "/data.json")
    r = c.getresponse()
    expect(r.status == 200 and r.read() == content("data.json"), "http.client as HTTP/1.0")
    c.close()


def t_absolute_form():
    s, rd = raw(b"GET http://example.org/style.css HTTP/1.1\r\nHost: example.org\r\n\r\n")
    status, _, body = rd.response()
    expect(status == 200 and body == content("style.css"), "status %d" % status)
    s.close()


def t_half_close():
    """A client that sends its requests and shuts down its side still gets
    every answer."""
    s, rd = raw(req(b"/style.css") + req(b"/one.bin"))
    s.shutdown(socket.SHUT_WR)
    expect(rd.response()[0] == 200 and rd.response()[0] == 200, "answers lost")
    expect(rd.closed(), "not closed after the client's FIN")
    s.close()


def t_big_file():
    r, body = get("/big.bin")
    expect(r.status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(content("big.bin")).digest(),
           "3 MiB file differs")


def curl(*a):
    p = subprocess.run(["curl", "-sS", "--max-time", "20"] + list(a), capture_output=True, timeout=30)
    expect(p.returncode == 0, "curl %s: %s" % (" ".join(a), p.stderr.decode().strip()))
    return p.stdout


def url(path):
    return "http://%s:%d%s" % (HOST, PORT, path)


def t_curl():
    out = curl("-o", "/dev/null", "-w", "%{http_code} %{remote_ip} %{size_download}", url("/one.bin"))
    code, ip, size = out.decode().split()
    expect(code == "200" and size == "1024", out)
    if args.expect_ip:
        expect(ip == args.expect_ip, "curl talked to %s, not %s" % (ip, args.expect_ip))
    # keep-alive: the second transfer reuses the first one's connection
    out = curl("-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}\n", url("/style.css"), url("/app.js"))
    expect(out.split() == [b"1", b"0"], "connections per transfer: %r" % out)
    expect(curl("-r", "5-9", url("/one.bin")) == content("one.bin")[5:10], "curl -r")
    # (-z would not do: curl turns a 200 older than its date into 304 itself)
    out = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "If-Modified-Since: Sun, 13 Sep 2020 12:26:40 GMT",
               url("/style.css"))
    expect(out == b"304", "curl If-Modified-Since: %r" % out)
    etag = [l.split(b":", 1)[1].strip() for l in curl("-I", url("/style.css")).splitlines() if l.lower().startswith(b"etag:")]
    expect(len(etag) == 1, "no ETag in curl -I")
    out = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", b"If-None-Match: ".decode() + etag[0].decode(), url("/style.css"))
    expect(out == b"304", "curl If-None-Match: %r" % out)
    head = curl("-I", url("/pic.png")).decode()
    expect(head.startswith("HTTP/1.1 200") and "Content-Type: image/png" in head, head[:80])
    big = curl(url("/big.bin"))
    expect(hashlib.sha256(big).digest() == hashlib.sha256(content("big.bin")).digest(), "curl: big.bin differs")
    out = curl("-o", "/dev/null", "-w", "%{http_code}", "--http1.0", url("/docs/"))
    expect(out == b"200", "curl --http1.0: %r" % out)


def t_idle_timeout():
    """A head that stops halfway, and a kept-alive connection with nothing
    more to ask, are both closed once idle for the server's timeout."""
    stalled, rd1 = raw(b"GET /index.html HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    idle, rd2 = raw(req(b"/style.css"))
    expect(rd2.response()[0] == 200, "the kept-alive request")
    start = time.time()
    # the sweep runs once a second: closed within the timeout plus two
    limit = args.idle_timeout + 2.5
    expect(rd1.closed(timeout=limit), "a stalled head stayed open %.1f s" % (time.time() - start))
    expect(rd2.closed(timeout=max(0.5, limit - (time.time() - start))), "an idle connection stayed open")
    expect(time.time() - start >= args.idle_timeout - 0.5, "closed before its timeout")
    stalled.close()
    idle.close()


for name, fn in [("get", t_get), ("index", t_index), ("mime-types", t_mime), ("escaped-name", t_escaped_name),
                 ("empty-file", t_empty_file), ("head", t_head), ("range", t_range),
                 ("range-416", t_range_unsatisfiable), ("if-modified-since", t_if_modified_since),
                 ("etag", t_etag), ("pipeline", t_pipeline), ("pipeline-split", t_pipeline_split),
                 ("keep-alive", t_keep_alive), ("404", t_not_found), ("links", t_links),
                 ("dot-dot-400", t_dot_dot), ("405-501", t_method_not_allowed),
                 ("431", t_header_too_large), ("431-flood", t_header_flood), ("414", t_uri_too_long),
                 ("400", t_bad_request), ("505", t_version), ("connection-close", t_connection_close),
                 ("http10", t_http10), ("absolute-form", t_absolute_form), ("half-close", t_half_close),
                 ("big-file", t_big_file), ("curl", t_curl)] + \
        ([("idle-timeout", t_idle_timeout)] if args.idle_timeout else []):
    check(name, fn)
sys.exit(1 if failures else 0)
