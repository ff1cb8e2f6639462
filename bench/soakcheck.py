#!/usr/bin/env python3
"""soakcheck.py OUT: pass or fail a soak (bench/soak.sh) from its files.

The soak passes when no call was lost and cloak ends where it started:
  - every call of the warm-up and the soak came up, none failed or was
    dropped, and every agent leg cloak placed was answered and ended;
  - with no call up, cloak's goroutines after the soak are at most
    GOROUTINE_SLACK above their count before the first call;
  - heap objects after a forced GC after the soak are at most HEAP_SLACK
    above their count after the warm-up (what the first calls leave
    behind, pools and caches, is kept, not grown);
  - RSS after the soak is at most RSS_SLACK_KIB above RSS after the
    warm-up (RSS keeps allocator spans the runtime has not returned yet,
    so it gets the widest margin).
Prints what it compared; exits 1 on a failure.
"""
import json
import os
import sys

GOROUTINE_SLACK = 3
HEAP_SLACK = 0.05  # fraction of the warm-up's heap objects, plus 1,000
RSS_SLACK_KIB = 24 * 1024

out = sys.argv[1] if len(sys.argv) > 1 else "bench/out"
fails = []


def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fails.append(f"{name}: {e}")
        return None


warm, soak, stats = load("soak-warmup.json"), load("soak.json"), load("soak-stats.json")
for name, r in (("warm-up", warm), ("soak", soak)):
    if not r:
        continue
    up, failed, dropped = r["calls_up"], r["calls_failed"], r["calls_dropped"]
    legs = r.get("agent_legs") or {}
    print(f"{name}: {up} calls up, {failed} failed, {dropped} dropped; agent legs "
          f"{legs.get('invites', 0)} placed, {legs.get('answered', 0)} answered, {legs.get('ended', 0)} ended, {legs.get('failed', 0)} failed")
    if up == 0:
        fails.append(f"{name}: no call came up")
    if failed or dropped:
        fails.append(f"{name}: {failed} calls failed, {dropped} dropped")
    if legs.get("failed", 0) or legs.get("answered", 0) != legs.get("ended", 0) or legs.get("invites", 0) != legs.get("answered", 0):
        fails.append(f"{name}: agent legs placed/answered/ended/failed {legs}")

if stats is not None and not stats:
    fails.append("soak-stats.json: no /api/stats sample was taken (did the API refuse the run's token?)")
if stats:
    at = {x["at"]: x["stats"] for x in stats}
    b, w, s = at.get("before"), at.get("after-warmup"), at.get("after-soak")
    if not (b and w and s):
        fails.append(f"soak-stats.json: want before, after-warmup and after-soak, have {sorted(at)}")
    else:
        print(f"goroutines: {b['goroutines']} before, {w['goroutines']} after the warm-up, {s['goroutines']} after the soak")
        print(f"heap objects after GC: {w['heap_objects']} after the warm-up, {s['heap_objects']} after the soak")
        if s.get("calls_active", 0):
            fails.append(f"{s['calls_active']} calls still active after the soak")
        if s["goroutines"] > b["goroutines"] + GOROUTINE_SLACK:
            fails.append(f"goroutines {b['goroutines']} -> {s['goroutines']}: more than {GOROUTINE_SLACK} left behind")
        if s["heap_objects"] > w["heap_objects"] * (1 + HEAP_SLACK) + 1000:
            fails.append(f"heap objects {w['heap_objects']} -> {s['heap_objects']}: grew over the soak")

if warm and soak:
    grew = soak["target"]["after"]["rss_kib"] - warm["target"]["after"]["rss_kib"]
    print(f"RSS after the soak - after the warm-up: {grew:+d} KiB")
    if grew > RSS_SLACK_KIB:
        fails.append(f"RSS grew {grew} KiB over the soak (limit {RSS_SLACK_KIB})")

for f in fails:
    print("FAIL:", f)
print("soak: " + ("FAILED" if fails else "passed"))
sys.exit(1 if fails else 0)
