#!/usr/bin/env bash
# examples/scale-out/start.sh: PostgreSQL, two exchmail frontends and HAProxy
# on this machine, all on 127.0.0.1.  Stop everything with stop.sh.
#
#   EXCHMAIL_VENV=.venv examples/scale-out/start.sh      # from the checkout
#
# Environment: SCALE_OUT_DATA (default ./scale-out-data), EXCHMAIL_VENV (the
# venv with exchmail[postgresql]), PGBIN (default: the newest
# /usr/lib/postgresql/*/bin), ports PGPORT (15432), LB_IMAP (10143),
# LB_POP3 (10110), IMAP1/IMAP2 (11143/11144), POP31/POP32 (11110/11111),
# and the demo account DEMO_USER/DEMO_PASSWORD (demo / demo password).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DATA=$(mkdir -p "${SCALE_OUT_DATA:-scale-out-data}" && cd "${SCALE_OUT_DATA:-scale-out-data}" && pwd)
VENV=${EXCHMAIL_VENV:-.venv}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
PGPORT=${PGPORT:-15432} LB_IMAP=${LB_IMAP:-10143} LB_POP3=${LB_POP3:-10110}
IMAP1=${IMAP1:-11143} IMAP2=${IMAP2:-11144} POP31=${POP31:-11110} POP32=${POP32:-11111}
DEMO_USER=${DEMO_USER:-demo} DEMO_PASSWORD=${DEMO_PASSWORD:-demo password}

# initdb refuses to run as root: then the cluster belongs to "postgres".
as_pg=()
if [ "$(id -u)" = 0 ]; then
    as_pg=(runuser -u postgres --)
fi

# 1. PostgreSQL: a private cluster in $DATA/pg (skip initdb if it exists).
if [ ! -f "$DATA/pg/PG_VERSION" ]; then
    mkdir -p "$DATA/pg"
    [ ${#as_pg[@]} -eq 0 ] || chown postgres "$DATA/pg"
    "${as_pg[@]}" "$PGBIN/initdb" -D "$DATA/pg" -A trust -U exchmail -E UTF8 --locale=C >/dev/null
    printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n" \
        "$PGPORT" "$DATA/pg" >> "$DATA/pg/postgresql.conf"
fi
"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$DATA/pg" -l "$DATA/pg/server.log" -w start >/dev/null
"$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U exchmail -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'exchmail'" | grep -q 1 \
    || "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U exchmail exchmail

# 2. The frontends' configurations, the schema and the demo account.
for n in 1 2; do
    imap=IMAP$n pop3=POP3$n
    sed -e "s|@DATA@|$DATA|g" -e "s|@N@|$n|g" -e "s|@IMAP@|${!imap}|" -e "s|@POP3@|${!pop3}|" \
        -e "s|@PGPORT@|$PGPORT|" "$here/frontend.toml.in" > "$DATA/frontend$n.toml"
    mkdir -p "$DATA/frontend$n"
done
"$VENV/bin/exchmail" db upgrade --config "$DATA/frontend1.toml" 2>/dev/null \
    || "$VENV/bin/exchmail" db init --config "$DATA/frontend1.toml"
if ! "$VENV/bin/exchmail" user list --config "$DATA/frontend1.toml" 2>/dev/null | grep -qx "$DEMO_USER"; then
    printf '%s\n' "$DEMO_PASSWORD" \
        | "$VENV/bin/exchmail" user add "$DEMO_USER" --password-stdin --config "$DATA/frontend1.toml"
fi

# 3. Two frontends: identical but for their ports.
for n in 1 2; do
    "$VENV/bin/twistd" --pidfile "$DATA/frontend$n/twistd.pid" --logfile "$DATA/frontend$n/twistd.log" \
        exchmail --config "$DATA/frontend$n.toml"
done

# 4. HAProxy in front of them, if it is installed.
if command -v haproxy >/dev/null; then
    sed -e "s|@LB_IMAP@|$LB_IMAP|" -e "s|@LB_POP3@|$LB_POP3|" -e "s|@IMAP1@|$IMAP1|" -e "s|@IMAP2@|$IMAP2|" \
        -e "s|@POP31@|$POP31|" -e "s|@POP32@|$POP32|" "$here/haproxy.cfg.in" > "$DATA/haproxy.cfg"
    haproxy -D -p "$DATA/haproxy.pid" -f "$DATA/haproxy.cfg"
    echo "IMAP: 127.0.0.1:$LB_IMAP  POP3: 127.0.0.1:$LB_POP3  (HAProxy over both frontends)"
else
    echo "haproxy is not installed: use the frontends directly"
fi
echo "frontend 1: IMAP $IMAP1 POP3 $POP31   frontend 2: IMAP $IMAP2 POP3 $POP32"
echo "account: $DEMO_USER / $DEMO_PASSWORD   stop: $here/stop.sh"
