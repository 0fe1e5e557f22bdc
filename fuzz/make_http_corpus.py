#!/usr/bin/env python3
"""Writes the seed corpus of the usnet-httpd request fuzz target
(fuzz/http-corpus/): request streams that reach each part of the parser
and the responder — pipelines, bodies to skip, ranges, preconditions,
versions, the error statuses."""
import os

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "http-corpus")
os.makedirs(out, exist_ok=True)


def req(path=b"/", fields=(), method=b"GET", version=b"HTTP/1.1", eol=b"\r\n"):
    return method + b" " + path + b" " + version + eol + b"".join(f + eol for f in (b"Host: h",) + tuple(fields)) + eol


seeds = {
    "get": req(),
    "get_lf_only": req(b"/index.html", eol=b"\n"),
    "head": req(b"/a.bin", method=b"HEAD"),
    "pipeline": req(b"/a.bin") + req(b"/index.html") + req(b"/missing") + req(b"/d"),
    "range": req(b"/a.bin", [b"Range: bytes=3-9"]),
    "range_suffix": req(b"/a.bin", [b"Range: bytes=-4"]),
    "range_open": req(b"/a.bin", [b"Range: bytes=30-"]),
    "range_416": req(b"/a.bin", [b"Range: bytes=99-"]),
    "range_if_range": req(b"/a.bin", [b"Range: bytes=1-2", b'If-Range: "5a2bca2f5d7b8000-24"']),
    "ims": req(b"/index.html", [b"If-Modified-Since: Sun, 13 Sep 2020 12:26:40 GMT"]),
    "ims_rfc850": req(b"/index.html", [b"If-Modified-Since: Sunday, 13-Sep-20 12:26:40 GMT"]),
    "ims_asctime": req(b"/index.html", [b"If-Modified-Since: Sun Sep 13 12:26:40 2020"]),
    "inm": req(b"/index.html", [b'If-None-Match: "x", W/"y", *']),
    "if_match": req(b"/a.bin", [b'If-Match: "nope"', b"If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT"]),
    "post_body": req(b"/", [b"Content-Length: 5"], method=b"POST") + b"hello" + req(b"/a.bin"),
    "unknown_method": req(b"/", method=b"BREW"),
    "http10_keepalive": req(b"/", [b"Connection: keep-alive"], version=b"HTTP/1.0") + req(b"/a.bin", version=b"HTTP/1.0"),
    "connection_close": req(b"/", [b"Connection: close"]) + req(b"/a.bin"),
    "http2": req(version=b"HTTP/2.0"),
    "absolute": req(b"http://example.org/a.bin?x=1"),
    "escapes": req(b"/sp%20ace") + req(b"/%2e%2e/etc/passwd") + req(b"/d/"),
    "chunked": req(b"/", [b"Transfer-Encoding: chunked"]),
    "expect_continue": req(b"/", [b"Expect: 100-continue", b"Content-Length: 4"], method=b"PUT") + b"body",
    "bad_field": b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",
    "leading_empty_lines": b"\r\n\r\n" + req(),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
