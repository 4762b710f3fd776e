#!/usr/bin/env bash
# examples/scale-out/stop.sh: stop what start.sh started (by the pid files it wrote).
set -uo pipefail
DATA=${SCALE_OUT_DATA:-scale-out-data}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
for pidfile in "$DATA/haproxy.pid" "$DATA/frontend1/twistd.pid" "$DATA/frontend2/twistd.pid"; do
    [ -f "$pidfile" ] && kill "$(head -1 "$pidfile")" 2>/dev/null
done
for _ in $(seq 50); do
    [ -f "$DATA/frontend1/twistd.pid" ] || [ -f "$DATA/frontend2/twistd.pid" ] || break
    sleep 0.1
done
rm -f "$DATA/haproxy.pid"
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
[ -f "$DATA/pg/postmaster.pid" ] && "${as_pg[@]}" "$PGBIN/pg_ctl" -D "$DATA/pg" -m fast -w stop >/dev/null
exit 0
