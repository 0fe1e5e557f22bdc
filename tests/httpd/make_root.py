#!/usr/bin/env python3
"""Writes the document root the httpd tests serve: files of known contents
and types, a directory with an index, a nested one without, a file whose
name needs escaping, a large file, and links (one inside the root, one
pointing outside it, which must never be served).

usage: make_root.py DIR"""
import os
import random
import sys

root = sys.argv[1]
rnd = random.Random(15)
os.makedirs(os.path.join(root, "docs", "deep"), exist_ok=True)
os.makedirs(os.path.join(root, "empty-dir"), exist_ok=True)


def put(rel, data):
    with open(os.path.join(root, rel), "wb") as f:
        f.write(data)


put("index.html", b"<!doctype html><title>usnet-httpd</title><p>root index</p>\n")
put("one.bin", bytes(rnd.getrandbits(8) for _ in range(1024)))
put("style.css", b"body { color: #123; }\n")
put("app.js", b"console.log('usnet');\n")
put("data.json", b'{"usnet": true}\n')
put("pic.png", b"\x89PNG\r\n\x1a\n" + bytes(rnd.getrandbits(8) for _ in range(200)))
put("noext", b"no extension here\n")
put("empty.txt", b"")
put("space name.txt", b"a name with a space\n")
put("docs/index.html", b"<p>docs index</p>\n")
put("docs/deep/page.txt", b"deep page\n")
put("big.bin", bytes(rnd.getrandbits(8) for _ in range(3 << 20)))
os.symlink("style.css", os.path.join(root, "link-inside.css"))
os.symlink("/etc/passwd", os.path.join(root, "link-outside"))
# A fixed, old modification time: If-Modified-Since checks need one known
# to the second.
for dirpath, _, files in os.walk(root):
    for name in files:
        p = os.path.join(dirpath, name)
        if not os.path.islink(p):
            os.utime(p, (1600000000, 1600000000))
