#!/usr/bin/env bash
# A non-Python client's tests: curl (IMAP and POP3 over TLS) against
# `exchmail serve --ephemeral`, set up and faulted through `exchmail control`.
# Needs: curl, and exchmail on PATH (or EXCHMAIL=/path/to/exchmail).
# Prints one line per check and "N passed, N failed" at the end.
set -uo pipefail
EXCHMAIL=${EXCHMAIL:-exchmail}
work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
check() {  # check NAME COMMAND...: pass if the command succeeds
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); echo "ok   $name"
    else failed=$((failed + 1)); echo "FAIL $name"; fi
}
field() {  # field NAME: a number or string from the server's JSON line (no jq needed)
    sed -n "s/.*\"$1\": \"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" "$work/ports.json"
}
# Several requests per call: each `exchmail control` is a new process.
control() { "$EXCHMAIL" control "$(field control_socket)" "$@"; }

printf 'From a@example.org Mon Jan  1 00:00:00 2024\nSubject: first\n\nHello from the seed\n' \
    > "$work/seed.mbox"
"$EXCHMAIL" serve --ephemeral --user alice:secret --tls --seed "$work/seed.mbox" \
    --port-file "$work/ports.json" > /dev/null &
server=$!
for _ in $(seq 300); do [ -s "$work/ports.json" ] && break; sleep 0.1; done
[ -s "$work/ports.json" ] || { echo "FAIL the server did not start"; exit 1; }

CA=$(field ca_file)
IMAPS="imaps://localhost:$(field imaps_port)"
POP3S="pop3s://localhost:$(field pop3s_port)"
curl_() { curl --silent --show-error --max-time 10 --cacert "$CA" --user alice:secret "$@"; }

# 1. The seeded message over IMAPS, STARTTLS and POP3S, verified with the generated CA.
check "imaps fetch" test "$(curl_ "$IMAPS/INBOX;UID=1" | tr -d '\r')" = \
    "$(printf 'Subject: first\n\nHello from the seed')"
check "starttls fetch" grep -q "Hello from the seed" \
    <(curl_ --ssl-reqd "imap://localhost:$(field imap_port)/INBOX;UID=1")
check "pop3s retr" grep -q "Hello from the seed" <(curl_ "$POP3S/1")

# 2. Read back what curl did (FETCH BODY[] sets \Seen), deliver more, set a fault.
control '{"op": "mailbox", "user": "alice"}' \
        '{"op": "deliver", "user": "alice", "message": "Subject: second\n\nsecond body\n"}' \
        '{"op": "fault", "action": "reply", "command": "SELECT", "status": "NO",
          "text": "[UNAVAILABLE] Mailbox database offline"}' > "$work/answers"
check "seen flag" grep -q '"flags": \["\\\\Seen"\]' <(head -1 "$work/answers")
check "delivered as UID 2" grep -q '"uid": 2' <(sed -n 2p "$work/answers")

# 3. Injected failures: curl must report exactly these.
curl_ "$IMAPS/INBOX;UID=2" > /dev/null 2> "$work/err"
check "select refused: curl exit 67" test $? = 67
check "select refused: curl says why" grep -q "Select failed" "$work/err"

control '{"op": "transcript", "user": "alice"}' \
        '{"op": "fault", "action": "drop", "command": "FETCH", "when": "during", "octets": 40}' \
        '{"op": "fault", "action": "reply", "command": "RETR", "status": "NO",
          "text": "[SYS/TEMP] Try again later"}' > "$work/answers"
check "select refused: the server said it" \
    grep -q "NO \[UNAVAILABLE\] Mailbox database offline" <(head -1 "$work/answers")

curl_ "$IMAPS/INBOX;UID=2" > "$work/partial" 2> "$work/err"
check "dropped mid-literal: curl exit 56 (receive failure)" test $? = 56
check "dropped mid-literal: only the start arrived" test "$(wc -c < "$work/partial")" -lt 20
curl_ "$POP3S/1" > /dev/null 2> "$work/err"
check "pop3 refused: curl exit 8 (-ERR reply)" test $? = 8

# 4. Every rule fired once; stop through the control socket: exit 0, nothing left behind.
control '{"op": "faults"}' '{"op": "stop"}' > "$work/answers"
check "every rule fired once" test "$(head -1 "$work/answers" | grep -o '"fired": 1' | wc -l)" = 3
wait "$server"
check "stopped cleanly" test $? = 0
server=
check "port file removed" test ! -e "$work/ports.json"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
