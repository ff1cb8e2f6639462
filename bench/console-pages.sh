#!/usr/bin/env bash
# console-pages.sh BIN DATA: server time of each web console page and of
# the API calls the page makes when it loads, over the archive in DATA
# (N runs each, default 20; curl's time_total on loopback). Fill DATA
# first with: BIN archive dev-generate -n 1000000 -data DATA
# (docs/PERFORMANCE.md, "Web console pages at 1,000,000 interactions").
set -euo pipefail
BIN=$1 DATA=$2
N=${N:-20}
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
SIP=$(port) ADM=$(port)
CFG=$(mktemp --suffix .yaml)
cat > "$CFG" <<YAML
sip:
  listen: 127.0.0.1:$SIP
rtp:
  ports: 47000-47019
data:
  dir: $DATA
admin:
  listen: 127.0.0.1:$ADM
log:
  level: warn
YAML
"$BIN" serve -config "$CFG" 2> "$DATA/console-pages-serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$CFG"' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$ADM/healthz" >/dev/null && break; sleep 0.2; done
TOK=$("$BIN" tokens create -name console-bench -role admin -config "$CFG")
ID=$(curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:$ADM/api/archive/interactions?limit=1" | python3 -c 'import json,sys;print(json.load(sys.stdin)["interactions"][0]["id"])')
# The cursor the console's Next carries to page 2000: the next of the row before it.
AFTER=$(curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:$ADM/api/archive/interactions?limit=1&offset=99949" | python3 -c 'import json,sys,urllib.parse;print(urllib.parse.quote(json.load(sys.stdin)["next"]))')
measure() { # name path
	local times=()
	for _ in $(seq 1 "$N"); do
		times+=("$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOK" -H 'Accept: text/html' "http://127.0.0.1:$ADM$2")")
	done
	printf '%s\n' "${times[@]}" | sort -n | awk -v name="$1" -v n="$N" '{a[NR]=$1} END {printf "%-48s p50 %6.1f ms  p95 %6.1f ms  max %6.1f ms\n", name, a[int(n*0.5)]*1000, a[int(n*0.95)]*1000, a[n]*1000}'
}
measure "GET /desk (page)" /desk
measure "  GET /api/calls" /api/calls
measure "GET /live (page)" /live
measure "  GET /api/agents" /api/agents
measure "GET /archive (page)" /archive
measure "  GET /api/archive/interactions (first page of 50)" "/api/archive/interactions?limit=50&offset=0"
measure "  ... page 2000 (offset 99950)" "/api/archive/interactions?limit=50&offset=99950"
measure "  ... page 2000 (after=, as the console pages)" "/api/archive/interactions?limit=50&after=$AFTER"
measure "  ... by caller" "/api/archive/interactions?limit=50&caller=%2B447700900123"
measure "GET /archive/{id} (page)" "/archive/$ID"
measure "  GET /api/archive/interactions/{id}" "/api/archive/interactions/$ID"
measure "GET /audit (page)" /audit
measure "  GET /api/archive/audit?verify=true" "/api/archive/audit?verify=true"
measure "GET /holds (page)" /holds
measure "  GET /api/fraud/holds" /api/fraud/holds
curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:$ADM/api/archive/interactions?limit=1" | python3 -c 'import json,sys;print("archive total:", json.load(sys.stdin)["total"])'
