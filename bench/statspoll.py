#!/usr/bin/env python3
"""statspoll.py ADDR TOKEN_FILE OUT [SECONDS]: append cloak's /api/stats to
OUT once a second, one JSON line each ({"t": unix seconds, "stats": {...}}),
for at most SECONDS (600).

One process and one kept-alive HTTP connection for the whole run: the
shell loop it replaces started curl, tr, date and sleep every second, four
processes a second on the two cores the relay under test runs on, and the
rounds that polled had a worse latency tail than those that did not
(docs/PERFORMANCE.md, "Session 14"). A failed request is skipped, not fatal:
the node may be starting or stopping.
"""
import http.client
import json
import sys
import time


def main():
    addr, token_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 600
    with open(token_file) as f:
        token = f.read().strip()
    host, port = addr.rsplit(":", 1)
    conn = None
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    with open(out, "a") as w:
        while time.monotonic() < end:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, int(port), timeout=5)
                conn.request("GET", "/api/stats", headers={"Authorization": "Bearer " + token})
                res = conn.getresponse()
                body = res.read()
                if res.status == 200:
                    w.write(json.dumps({"t": time.time(), "stats": json.loads(body)}) + "\n")
                    w.flush()
            except (OSError, http.client.HTTPException, ValueError):
                if conn is not None:
                    conn.close()
                conn = None
            next_at += 1
            time.sleep(max(0, next_at - time.monotonic()))


if __name__ == "__main__":
    main()
