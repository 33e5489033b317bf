#!/bin/bash
# demo.sh - what `make demo` runs: the real vmrqd, end to end, on a private PostgreSQL under
# .build/demo and libvirt's test driver loaded with etc/demo-hypervisor.xml. A portal's morning
# in a school, enqueued with the vmrq CLI as a portal would: an operator discovers the machines
# and starts the classroom, a user resumes her paused desktop, a guest ignores the power button
# and is forced off after its timeout, a user is refused another's desktop, a reboot is scheduled,
# a request names a desktop that does not exist; a lesson's clones; a student's desktop started,
# its display, her walking away and the desktop shut down after the grace (on a real guest, when
# t/with-libvirtd can run one); then the requests table as an operator reads it.
# Each runs with the role of whoever does it: the operator's steps as a member of vmrq_operator,
# the users' through the portal as one of vmrq_portal (which may enqueue and read, and is refused
# the rest), vmrqd as one of vmrq_daemon. Each step's outcome is checked: the demo exits non-zero
# if the story did not happen.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${VMRQ_BUILD:-.build/default}
DEMO=$PWD/.build/demo

if [ "${1:-}" != --inside ]; then
    mkdir -p "$DEMO"
    VMRQ_PG_DIR=$DEMO/pg VMRQ_PG_KEEP=1 exec t/with-pg "$0" --inside
fi

OWNER_DB=$VMRQ_DB
vmrq() { VMRQ_DB="$OWNER_DB user=demo_olga" "$BUILD/vmrq" "$@"; }
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() { printf '$ vmrq %s\n' "$*"; vmrq "$@"; }
# what the school's web portal does for its users, as the portal's role
portal() { printf '(portal) $ vmrq %s\n' "$*"; VMRQ_DB="$OWNER_DB user=demo_web" "$BUILD/vmrq" "$@"; }
fail() { echo "demo: $*" >&2; exit 1; }
sql() { psql -qAtX -c "$1"; }

URI="test://$PWD/etc/demo-hypervisor.xml"
start_s=$(date +%s)

say "The schema and its roles; people, the node and its desktops"
printf '$ vmrq db upgrade\n'; "$BUILD/vmrq" db upgrade       # as the schema's owner
for who in demo_web:--portal demo_olga:--operator demo_vmrqd:--daemon; do
    sql "CREATE ROLE ${who%%:*} LOGIN"
    "$BUILD/vmrq" db grant "${who%%:*}" "${who#*:}"
done
for u in alice bob carol; do vmrq user add "$u" >/dev/null; done
vmrq user add olga --operator >/dev/null
vmrq node add demo --uri "$URI" >/dev/null
for u in alice bob carol; do vmrq domain add "desk-$u" --owner "$u" --node demo >/dev/null; done
run user list

say "vmrqd starts (node 'demo', libvirt $URI)"
printf 'lease = 5s\ncleanup_interval = 0\nrefresh_interval = 0\nlog_level = info\n' > "$DEMO/vmrqd.conf"
VMRQ_DB="$OWNER_DB user=demo_vmrqd" VMRQ_NODE=demo VMRQ_LIBVIRT_URI="$URI" \
    "$BUILD/vmrqd" -d -f "$DEMO/vmrqd.conf" 2> "$DEMO/vmrqd.log" &
daemon=$!
trap 'kill -9 $daemon 2>/dev/null || true' EXIT
run request ping_backend --wait --wait-timeout 10 >/dev/null || fail "vmrqd did not answer; see $DEMO/vmrqd.log"
echo "vmrqd answers (ping_backend done)"

say "The operator (olga, uid 4) brings the table in line with the hypervisor"
run request refresh_vms uid=4 --wait
run domain list

say "Morning: olga starts the classroom; carol resumes her paused desktop"
run request start uid=4 name=class-01 --wait
run request start uid=4 name=class-02 --wait          # hibernated: start restores it
portal request resume uid=3 name=desk-carol --wait

say "bob shuts his desktop down, 3 s timeout; its guest ignores the power button"
portal request shutdown uid=2 name=desk-bob timeout=3 --wait
force=$(sql "SELECT id FROM requests WHERE command = 'force_shutdown' ORDER BY id DESC LIMIT 1")
[ -n "$force" ] || fail "no force_shutdown follow-up was enqueued"
echo "follow-up: request $force (force_shutdown), due in 3 s"

say "bob tries alice's desktop: refused, and nothing is touched"
if portal request shutdown uid=2 name=desk-alice --wait; then fail "bob was allowed to shut alice's desktop down"; fi

say "The portal's account cannot rewrite the queue: PostgreSQL refuses it"
echo "(portal) \$ psql -c \"UPDATE requests SET status = 'done'\""
if psql -qAtX -U demo_web -c "UPDATE requests SET status = 'done'"; then fail "the portal could rewrite the queue"; fi

say "olga schedules a reboot of the lab server in 2 s, then mistypes a desktop's name"
reboot=$(vmrq request reboot uid=4 name=lab-server --at +2)
echo "request $reboot (reboot), scheduled"
if run request start uid=4 name=desk-alcie --wait; then fail "a domain that does not exist was started"; fi

say "Waiting for the scheduled requests"
run wait "$reboot" --timeout 20
run wait "$force" --timeout 20

say "A lesson: olga makes class-01 the base of today's lesson; the students each get a clone"
run request shutdown uid=4 name=class-01 --wait
run request prepare_base uid=4 name=class-01 --wait
echo "(olga) \$ psql -c \"UPDATE domains SET is_public = true WHERE name = 'class-01'\""
psql -qAtX -U demo_olga -c "UPDATE domains SET is_public = true WHERE name = 'class-01'"
lesson=()
for uid in 1 2 3; do   # the portal's one call per student: her clone, started, made if need be
    printf '(portal) $ vmrq request provision uid=%s base=class-01\n' "$uid"
    lesson+=("$(VMRQ_DB="$OWNER_DB user=demo_web" "$BUILD/vmrq" request provision uid=$uid base=class-01)")
done
for id in "${lesson[@]}"; do vmrq wait "$id" --timeout 20 >/dev/null || fail "provision $id did not finish"; done
[ "$(sql "SELECT count(*) FROM domains WHERE id_base = (SELECT id FROM domains WHERE name = 'class-01')
          AND status = 'running'")" = 3 ] || fail "the three students' clones are not running"
run domain list

# A student walks away: on a real guest (QEMU under t/with-libvirtd's private libvirtd), since
# libvirt's test driver has no display and emits no viewer events.
say "A student walks away: alice's lab desktop on a real guest, shut down 3 s after she leaves"
if [ -n "${VMRQ_GUEST_SKIP:-}" ] || [ -z "${VMRQ_GUEST_URI:-}" ]; then
    echo "(skipped: ${VMRQ_GUEST_SKIP:-not run under t/with-libvirtd})"
else
    sed -e "s|@NAME@|lab-alice|g; s|@DIR@|$VMRQ_GUEST_DIR|g; s|@CMDLINE@||; s|@AGENT@||" \
        -e "s|@DISKS@|<graphics type='vnc' autoport='yes' listen='127.0.0.1'/>|" \
        t/guest/domain.xml.in > "$DEMO/lab-alice.xml"
    virsh -q -c "$VMRQ_GUEST_URI" define "$DEMO/lab-alice.xml" >/dev/null
    vmrq node add lab --uri "$VMRQ_GUEST_URI" >/dev/null
    VMRQ_DB="$OWNER_DB user=demo_vmrqd" VMRQ_NODE=lab VMRQ_LIBVIRT_URI="$VMRQ_GUEST_URI" \
        "$BUILD/vmrqd" -d -f "$DEMO/vmrqd.conf" 2> "$DEMO/vmrqd-lab.log" &
    lab=$!
    trap 'kill -9 $daemon $lab 2>/dev/null || true' EXIT
    run request refresh_vms uid=4 node=lab --wait >/dev/null
    run domain set-owner lab-alice --owner alice
    portal request start uid=1 name=lab-alice --wait >/dev/null
    run domain set lab-alice shutdown_disconnected=3
    id=$(sql "SELECT id FROM domains WHERE name = 'lab-alice'")
    echo "(portal) \$ psql -c \"SELECT * FROM vmrq_display($id, 1)\""
    psql -qX -U demo_web -c "SELECT * FROM vmrq_display($id, 1)"
    run display lab-alice
    port=$(sql "SELECT display_port FROM domains WHERE name = 'lab-alice'")
    for _ in $(seq 600); do grep -qs GUEST-READY "$VMRQ_GUEST_DIR/lab-alice.serial" && break; sleep 0.1; done
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    read -r -N 12 banner <&3
    echo "her viewer connects to 127.0.0.1:$port: the display says '${banner%$'\n'}'"
    for _ in $(seq 50); do [ "$(sql "SELECT viewer FROM domains WHERE id = $id")" = connected ] && break; sleep 0.1; done
    echo '$ vmrq domain list'; vmrq domain list | sed -n '1p;/lab-alice/p'
    sql "SELECT 'viewer: ' || viewer || ' from ' || viewer_address FROM domains WHERE id = $id"
    exec 3>&-
    echo "she closes it and walks away"
    for _ in $(seq 50); do [ "$(sql "SELECT viewer FROM domains WHERE id = $id")" = disconnected ] && break; sleep 0.1; done
    sql "SELECT 'viewer: ' || viewer || '; request ' || r.id || ' (shutdown) due at ' || to_char(r.at_time, 'HH24:MI:SS')
           FROM domains d JOIN requests r ON r.id_domain = d.id AND r.command = 'shutdown' AND r.status = 'requested'
          WHERE d.id = $id"
    for _ in $(seq 300); do [ "$(sql "SELECT status FROM domains WHERE id = $id")" = shutdown ] && break; sleep 0.1; done
    [ "$(sql "SELECT status FROM domains WHERE id = $id")" = shutdown ] || fail "lab-alice was not shut down after the grace"
    echo "lab-alice: $(virsh -q -c "$VMRQ_GUEST_URI" domstate lab-alice), its events:"
    sql "SELECT to_char(at, 'HH24:MI:SS.MS') || '  ' || event || '/' || detail || coalesce('  ' || address, '')
           FROM domain_events WHERE id_domain = $id ORDER BY id"
    kill -TERM $lab
    wait $lab || fail "the lab's vmrqd did not stop cleanly"
    trap 'kill -9 $daemon 2>/dev/null || true' EXIT
fi

say "The requests, as an operator sees them"
run list
say "The desktops"
run domain list

[ "$(sql "SELECT status FROM domains WHERE name = 'desk-bob'")" = shutdown ] || fail "desk-bob is not off"
[ "$(sql "SELECT status FROM domains WHERE name = 'desk-alice'")" = running ] || fail "desk-alice did not keep running"
[ "$(sql "SELECT count(*) FROM requests WHERE status = 'failed'")" = 2 ] || fail "expected exactly 2 failed requests"

say "vmrqd's log: one line per transition"
grep -E 'request [0-9]+ .*: (done|failed)' "$DEMO/vmrqd.log" | cut -c12- | head -n 30

say "Stopping vmrqd (SIGTERM drains it)"
kill -TERM $daemon
wait $daemon || fail "vmrqd did not stop cleanly"
trap - EXIT
echo "stopped; the demo took $(( $(date +%s) - start_s )) s. Cluster and log kept under $DEMO"

# The cluster outlives the demo (VMRQ_PG_KEEP): how to open it again. As root the server runs as
# nobody, as t/with-pg runs it.
as=; [ "$(id -u)" = 0 ] && as="runuser -u nobody -- "
say "To keep exploring this database"
cat <<EOS
  ${as}$VMRQ_PG_BINDIR/pg_ctl -D $DEMO/pg/data -l $DEMO/pg/server.log -o "-k $DEMO/pg -c listen_addresses=" -w start
  export VMRQ_DB="host=$DEMO/pg user=vmrq dbname=vmrq" PATH="$PWD/$BUILD:\$PATH"
  vmrq list; vmrq show 1; vmrq domain list; vmrq commands; psql "\$VMRQ_DB"
  VMRQ_NODE=demo VMRQ_LIBVIRT_URI=$URI vmrqd -d -f $DEMO/vmrqd.conf   # its daemon again
  ${as}$VMRQ_PG_BINDIR/pg_ctl -D $DEMO/pg/data -w stop   # when done; make demo starts afresh
EOS
