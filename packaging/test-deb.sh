#!/usr/bin/env bash
# The Debian package, end to end, as a gearmand user would switch:
#   1. build target/debian/sprocket_*.deb (release build, cargo-deb);
#   2. `apt-get install ./sprocket_*.deb`, which must swap out
#      gearman-job-server, then `dpkg -i` the same file again;
#   3. check the diversions of gearman/gearadmin, the user, the directories,
#      the unit (`systemd-analyze verify`) and the logrotate file;
#   4. run the unit's ExecStart command line with /etc/default/gearman-job-server
#      as the users' documents write it: Media Cloud's PostgreSQL lines,
#      Islandora's MySQL arguments appended to Debian's stock PARAMS, and no
#      file at all. Each time Debian's own gearman tool (now at
#      /usr/bin/gearman.gearman-tools) runs a worker, a job and a background
#      job, and the queue row is checked with SQL, as the documents do;
#   5. the container image's command lines (entry point, health check);
#   6. purge the package: gearman-tools' programs must be back in /usr/bin.
# Whatever happens, the machine is put back: sprocket purged, the previous
# /etc/default/gearman-job-server restored, gearman-job-server reinstalled
# (without starting it), the test databases, roles and user removed.
#
# Needs root, apt, the local PostgreSQL (127.0.0.1:5432, trust) and MariaDB
# (127.0.0.1:3306, root without password) that .ci/run starts, and
# gearman-tools. A missing tool prints `SKIPPED:`; under CI=true it fails.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n--- %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
fail() {
    echo "FAILED: $*" >&2
    exit 1
}
skip() {
    if [ "${CI:-}" = true ]; then fail "$* (a missing tool is a failure under CI=true)"; fi
    echo "SKIPPED: $*"
    exit 0
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# --- What the test needs -----------------------------------------------------
[ "$(id -u)" = 0 ] || skip "packaging test: needs root to install packages"
for tool in apt-get dpkg dpkg-divert systemd-analyze logrotate psql mariadb sqlite3 ss python3 cargo; do
    command -v "$tool" >/dev/null 2>&1 || skip "packaging test: $tool not found"
done
cargo deb --version >/dev/null 2>&1 || skip "packaging test: cargo-deb not installed (cargo install cargo-deb --locked)"
installed gearman-tools || skip "packaging test: gearman-tools not installed"
pg_isready -q -h 127.0.0.1 -p 5432 || skip "packaging test: PostgreSQL does not answer on 127.0.0.1:5432"
mariadb-admin -h 127.0.0.1 -P 3306 -u root --connect-timeout=2 ping >/dev/null 2>&1 ||
    skip "packaging test: MariaDB does not answer on 127.0.0.1:3306"
if installed sprocket || dpkg-query -W -f='${Status}' sprocket 2>/dev/null | grep -q config-files; then
    fail "a sprocket package is already on this machine; purge it first (apt-get purge sprocket)"
fi
for tool in gearman gearadmin; do
    if dpkg-divert --listpackage "/usr/bin/$tool" | grep -q .; then
        fail "/usr/bin/$tool is already diverted by $(dpkg-divert --listpackage "/usr/bin/$tool")"
    fi
done

debian_gearman=/usr/bin/gearman.gearman-tools   # where the package moves Debian's tool
pg() { psql -h 127.0.0.1 -p 5432 -U postgres -v ON_ERROR_STOP=1 -Atq "$@"; }
maria() { mariadb -h 127.0.0.1 -P 3306 -u root --batch --skip-column-names "$@"; }

# --- Build (before anything on the machine changes) --------------------------
step "release build and cargo deb"
cargo build --release --locked -p sprocket-server -p sprocket-cli
deb=$(cargo deb -p sprocket-server --no-build --strip | tail -n 1)
[ -f "$deb" ] || fail "cargo deb did not report the package it wrote (got: $deb)"
echo "package: $deb"
dpkg-deb --field "$deb" Package Conflicts Replaces Provides Depends

# --- State to restore, and the restoring --------------------------------------
work=$(mktemp -d)
chmod 755 "$work" # the image step runs a server as nobody with its data in here
had_job_server=0
if installed gearman-job-server; then had_job_server=1; fi
# gearman-job-server's package, fetched now so that putting it back needs
# no network and cannot fail after the swap.
if ((had_job_server)); then
    version=$(dpkg-query -W -f='${Version}' gearman-job-server)
    # apt downloads as its own user _apt, which must be able to write here.
    install -d -o _apt "$work/saved-package" 2>/dev/null || mkdir -p "$work/saved-package"
    if ! (cd "$work/saved-package" && apt-get download -q "gearman-job-server=$version"); then
        rm -rf "$work"
        fail "cannot download gearman-job-server $version, needed to reinstall it afterwards"
    fi
fi
had_default=0
if [ -e /etc/default/gearman-job-server ]; then
    cp -a /etc/default/gearman-job-server "$work/gearman-job-server.saved"
    had_default=1
fi
had_user=0
if getent passwd sprocket >/dev/null; then had_user=1; fi
had_run_dir=0
if [ -e /run/sprocket ]; then had_run_dir=1; fi
made_policy=0
pids_to_stop=()
# The users' databases and roles are made only where missing, and only
# those made here are dropped again; the queue tables are the test's own.
created_pg_role=0 created_pg_db=0 created_maria_db=0 created_maria_user=0

stop_started_processes() {
    local pid
    for pid in "${pids_to_stop[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    if [ -s /run/sprocket/sprocketd.pid ]; then
        kill "$(cat /run/sprocket/sprocketd.pid 2>/dev/null)" 2>/dev/null || true
    fi
    pids_to_stop=()
}

restore() {
    local status=$?
    set +e
    trap - EXIT
    trap '' TERM INT HUP # finish putting the machine back
    step "restoring the machine"
    stop_started_processes
    if dpkg-query -W -f='${Status}' sprocket 2>/dev/null | grep -q .; then
        dpkg --purge sprocket >/dev/null || echo "restore: dpkg --purge sprocket failed" >&2
    fi
    # gearman-job-server keeps this conffile while removed: its exact old
    # content must be back before it is reinstalled, or dpkg would take a
    # missing or changed file for the administrator's choice.
    if ((had_default)); then
        cp -a "$work/gearman-job-server.saved" /etc/default/gearman-job-server
    else
        rm -f /etc/default/gearman-job-server
    fi
    if ((had_job_server)) && ! installed gearman-job-server; then
        apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$work"/saved-package/gearman-job-server_*.deb >/dev/null ||
            echo "restore: reinstalling gearman-job-server failed; run: apt-get install gearman-job-server" >&2
    fi
    if ((made_policy)); then rm -f /usr/sbin/policy-rc.d; fi
    # systemd would remove its RuntimeDirectory; the wrapper made it here.
    if ((!had_run_dir)); then rm -rf /run/sprocket; fi
    if ((created_pg_db)); then pg -c 'DROP DATABASE IF EXISTS gearman'; fi
    if ((created_pg_role)); then pg -c 'DROP ROLE IF EXISTS gearman'; fi
    if ((created_maria_db)); then maria -e "DROP DATABASE IF EXISTS drupal"; fi
    if ((created_maria_user)); then maria -e "DROP USER IF EXISTS 'drupal'@'localhost', 'drupal'@'127.0.0.1'"; fi
    if ((!had_user)) && getent passwd sprocket >/dev/null; then
        userdel sprocket 2>/dev/null
        getent group sprocket >/dev/null && groupdel sprocket 2>/dev/null
    fi
    rm -rf "$work"
    exit "$status"
}
trap restore EXIT
# A signal ends the script through the EXIT trap too.
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# Package scripts must not start services here: gearmand or sprocketd on
# 4730 would get in the way of the test suites (as in .ci/run).
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
fi

# --- Install: the swap, then dpkg -i over it ---------------------------------
step "apt-get install $deb (swaps out gearman-job-server)"
apt-get install -y -q -o Dpkg::Use-Pty=0 "$(realpath "$deb")"
installed sprocket || fail "sprocket is not installed after apt-get install"
if installed gearman-job-server; then fail "gearman-job-server is still installed next to sprocket"; fi

step "dpkg -i $deb (the same version again)"
dpkg -i "$deb"
installed sprocket || fail "sprocket is not installed after dpkg -i"

# --- Installed files -----------------------------------------------------------
step "diversions, links, user, directories"
tools_md5sums=/var/lib/dpkg/info/gearman-tools.md5sums
for tool in gearman gearadmin; do
    [ "$(dpkg-divert --listpackage "/usr/bin/$tool")" = sprocket ] || fail "/usr/bin/$tool is not diverted by sprocket"
    [ "$(dpkg-divert --truename "/usr/bin/$tool")" = "/usr/bin/$tool.gearman-tools" ] ||
        fail "/usr/bin/$tool is not diverted to /usr/bin/$tool.gearman-tools"
    [ "$(readlink "/usr/bin/$tool")" = sprocket ] || fail "/usr/bin/$tool is not the link to sprocket"
    want=$(awk -v f="usr/bin/$tool" '$2 == f { print $1 }' "$tools_md5sums")
    got=$(md5sum <"/usr/bin/$tool.gearman-tools" | cut -d' ' -f1)
    [ -n "$want" ] && [ "$want" = "$got" ] || fail "/usr/bin/$tool.gearman-tools is not gearman-tools' $tool"
done
/usr/bin/gearman -H 2>&1 | grep -qi sprocket || fail "/usr/bin/gearman -H does not print Sprocket's usage"
uid=$(id -u sprocket) || fail "no user sprocket"
((uid < 1000)) || fail "user sprocket is not a system user (uid $uid)"
[ "$(stat -c %U /var/lib/sprocket)" = sprocket ] || fail "/var/lib/sprocket does not belong to sprocket"
[ "$(stat -c %U /var/log/sprocket)" = sprocket ] || fail "/var/log/sprocket does not belong to sprocket"

step "systemd-analyze verify, logrotate syntax"
unit=/usr/lib/systemd/system/sprocketd.service
[ -f "$unit" ] || fail "$unit is missing"
verify_out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $verify_out"
if grep -i sprocket <<<"$verify_out"; then fail "systemd-analyze verify warns about the unit"; fi
logrotate -d /etc/logrotate.d/sprocket >"$work/logrotate-debug" 2>&1 ||
    fail "logrotate rejects /etc/logrotate.d/sprocket: $(cat "$work/logrotate-debug")"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
pid_file=$(sed -n 's/^PIDFile=//p' "$unit")
[ -n "$exec_start" ] && [ -n "$pid_file" ] || fail "no ExecStart= or PIDFile= in $unit"
echo "ExecStart=$exec_start"

# --- Running the unit's command line ------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
[ "$port" != 4730 ] || fail "the free port chosen is 4730"
# The port is the one setting the test adds; it goes in Sprocket's own file
# so that gearman-job-server's file keeps exactly the users' lines.
printf 'SPROCKETD_OPTS="--port=%s"\n' "$port" >/etc/default/sprocketd

server_pid=
# As systemd runs it (Type=forking): as root, in a clean environment; the
# first process exits once the server listens, and the pid file names the
# server.
start_unit() {
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        "$exec_start" || fail "the unit's command line failed (exit $?)"
    [ -s "$pid_file" ] || fail "no pid file $pid_file after start"
    server_pid=$(cat "$pid_file")
    pids_to_stop+=("$server_pid")
    [ "$(ps -o user= -p "$server_pid")" = sprocket ] || fail "sprocketd does not run as the user sprocket"
}
stop_unit() {
    kill -TERM "$server_pid"
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$server_pid" 2>/dev/null && fail "sprocketd did not stop within 10 s of SIGTERM"
    [ ! -e "$pid_file" ] || fail "sprocketd left its pid file $pid_file"
    return 0
}
listening_on() { ss -Hltn "sport = :$port" | awk '{ print $4 }' | sort | tr '\n' ' '; }

# The documents' walkthrough with Debian's gearman: a `wc -l` worker, a job
# through it, then (worker gone) a background job that must stay queued.
gm() { "$debian_gearman" -h 127.0.0.1 -p "$port" "$@"; }
drive_with_debian_gearman() {
    "$debian_gearman" -h 127.0.0.1 -p "$port" -w -f wc -- wc -l &
    local worker=$!
    pids_to_stop+=("$worker")
    local got want
    got=$(timeout 20 "$debian_gearman" -h 127.0.0.1 -p "$port" -f wc </etc/group) || fail "gearman -f wc failed"
    want=$(wc -l </etc/group)
    [ "$got" = "$want" ] || fail "gearman -f wc < /etc/group printed '$got', expected '$want'"
    kill "$worker"
    wait "$worker" 2>/dev/null || true
    timeout 20 "$debian_gearman" -h 127.0.0.1 -p "$port" -b -f wc </etc/passwd || fail "gearman -b -f wc failed"
}

step "seed 000 (Media Cloud): PostgreSQL queue from /etc/default/gearman-job-server"
if [ -z "$(pg -c "SELECT 1 FROM pg_roles WHERE rolname = 'gearman'")" ]; then
    pg -c "CREATE ROLE gearman LOGIN PASSWORD 'correct horse battery staple'"
    created_pg_role=1
fi
if [ -z "$(pg -c "SELECT 1 FROM pg_database WHERE datname = 'gearman'")" ]; then
    pg -c 'CREATE DATABASE gearman OWNER gearman'
    created_pg_db=1
fi
pg -d gearman -c 'DROP TABLE IF EXISTS queue'
# The file as Media Cloud's notes leave it (their lines, unchanged).
cat >/etc/default/gearman-job-server <<'EOF'
# Parameters to pass to gearmand.
PARAMS="--listen=127.0.0.1"

# Use PostgreSQL for storing a job queue
export PGHOST=127.0.0.1
export PGPORT=5432
export PGUSER=gearman
export PGPASSWORD="correct horse battery staple"
export PGDATABASE=gearman
PARAMS="$PARAMS --queue-type Postgres"
PARAMS="$PARAMS --libpq-table=queue"
PARAMS="$PARAMS --verbose DEBUG"
EOF
start_unit
[ "$(listening_on)" = "127.0.0.1:$port " ] || fail "listening on '$(listening_on)', expected 127.0.0.1:$port only"
drive_with_debian_gearman
[ "$(pg -d gearman -c 'SELECT COUNT(*) FROM queue')" = 1 ] || fail "the queue table does not hold the background job"
# Created by sprocketd with the PG* variables of the file, so owned by gearman.
[ "$(pg -d gearman -c "SELECT tableowner FROM pg_tables WHERE tablename = 'queue'")" = gearman ] ||
    fail "the queue table does not belong to gearman (the file's PGUSER)"
log=/var/log/sprocket/sprocketd.log
[ -s "$log" ] || fail "nothing in $log at --verbose DEBUG"
[ "$(stat -c %U "$log")" = sprocket ] || fail "$log does not belong to sprocket"

step "logrotate: rotation and SIGHUP reopening"
logrotate -f -s "$work/logrotate.state" /etc/logrotate.d/sprocket || fail "logrotate failed"
[ -s "$log.1" ] || fail "logrotate did not rotate $log"
rotated_size=$(stat -c %s "$log.1")
gm -s -f no_worker_needed -b >/dev/null || fail "a background job after the rotation failed"
for ((i = 0; i < 50; i++)); do
    [ -s "$log" ] && break
    sleep 0.1
done
[ -s "$log" ] || fail "sprocketd did not reopen $log after logrotate's SIGHUP"
[ "$(stat -c %s "$log.1")" = "$rotated_size" ] || fail "sprocketd still writes to the rotated $log.1"
pg -d gearman -c "DELETE FROM queue WHERE function_name = 'no_worker_needed'" >/dev/null

step "seed 000: the queued job survives a restart of the unit and then runs"
stop_unit
start_unit
[ "$(/usr/bin/gearadmin -h 127.0.0.1 -p "$port" --status | awk '$1 == "wc" { print $2 }')" = 1 ] ||
    fail "the restarted server does not hold the background job"
timeout 20 "$debian_gearman" -h 127.0.0.1 -p "$port" -w -c 1 -f wc -- wc -l >/dev/null ||
    fail "a worker did not get the replayed job"
for ((i = 0; i < 50; i++)); do
    [ "$(pg -d gearman -c 'SELECT COUNT(*) FROM queue')" = 0 ] && break
    sleep 0.1
done
[ "$(pg -d gearman -c 'SELECT COUNT(*) FROM queue')" = 0 ] || fail "the finished job's row is still in the queue"
stop_unit

step "seed 002 (Islandora): MySQL arguments added to Debian's stock PARAMS"
if [ -z "$(maria -e "SHOW DATABASES LIKE 'drupal'")" ]; then
    maria -e "CREATE DATABASE drupal"
    created_maria_db=1
fi
if [ -z "$(maria -e "SELECT 1 FROM mysql.user WHERE user = 'drupal'")" ]; then
    maria -e "CREATE USER 'drupal'@'localhost' IDENTIFIED BY 'your_pw';
              CREATE USER 'drupal'@'127.0.0.1' IDENTIFIED BY 'your_pw';
              GRANT ALL ON drupal.* TO 'drupal'@'localhost', 'drupal'@'127.0.0.1'"
    created_maria_user=1
fi
maria -e "DROP TABLE IF EXISTS drupal.gearman_queue"
# Debian's file as gearman-job-server installs it, with Islandora's line
# added to PARAMS: it also holds --daemon and a --log-file in gearmand's
# log directory, which the unit overrides.
cat >/etc/default/gearman-job-server <<'EOF'
# Parameters to pass to gearmand.
PARAMS="--listen=localhost \
 --daemon \
 --log-file=/var/log/gearman-job-server/gearmand.log \
 --queue-type=MySQL  --mysql-host=localhost  --mysql-port=3306 --mysql-user=drupal --mysql-password=your_pw --mysql-db=drupal --mysql-table=gearman_queue"
EOF
start_unit
case "$(listening_on)" in
    *"127.0.0.1:$port "*) ;;
    *) fail "listening on '$(listening_on)', expected localhost's addresses" ;;
esac
if listening_on | grep -q -e "0.0.0.0:" -e '\*:'; then fail "listening on every address: $(listening_on)"; fi
drive_with_debian_gearman
[ "$(maria -e 'SELECT function_name, COUNT(function_name) FROM drupal.gearman_queue GROUP BY function_name')" = "$(printf 'wc\t1')" ] ||
    fail "gearman_queue does not hold the background job"
# The unit's --log-file wins over the one in PARAMS. At the default level
# nothing may be logged yet, so look at the file sprocketd holds open.
ls -l "/proc/$server_pid/fd" >"$work/fds"
grep -q " $log\$" "$work/fds" || fail "sprocketd does not have $log open"
if grep -q gearman-job-server "$work/fds"; then fail "sprocketd opened a file of gearman-job-server's"; fi
stop_unit

step "no /etc/default/gearman-job-server: local connections, SQLite queue in /var/lib/sprocket"
rm -f /etc/default/gearman-job-server
start_unit
[ "$(listening_on)" = "127.0.0.1:$port " ] || fail "listening on '$(listening_on)', expected 127.0.0.1:$port only"
drive_with_debian_gearman
db=/var/lib/sprocket/sprocket-$port.db
[ "$(stat -c %U "$db")" = sprocket ] || fail "$db does not belong to sprocket"
stop_unit
[ "$(sqlite3 "$db" "SELECT function_name, COUNT(*) FROM gearman_queue GROUP BY function_name")" = "wc|1" ] ||
    fail "$db does not hold the background job"

step "the container image's command lines (Dockerfile ENTRYPOINT, CMD, HEALTHCHECK)"
# The installed binaries have the image's paths; run as a user without
# privileges, as the image does, with a data directory of its own.
mapfile -t entrypoint < <(python3 - "$repo/Dockerfile" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
def field(name):
    return json.loads(re.search(r"^" + name + r" (\[.*\])$", text, re.M).group(1))
for arg in field("ENTRYPOINT") + field("CMD"):
    print(arg)
EOF
)
health=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$repo/Dockerfile" | sed -n 's/^HEALTHCHECK .* CMD //p')
[ "${#entrypoint[@]}" -gt 1 ] && [ -n "$health" ] || fail "cannot read ENTRYPOINT/CMD/HEALTHCHECK from the Dockerfile"
image_data=$work/image-data
install -d -o nobody "$image_data"
env -i PATH=/usr/local/bin:/usr/bin:/bin GEARMAND_PORT="$port" \
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "${entrypoint[@]}" --data-dir="$image_data" 2>"$work/image.log" &
image_pid=$!
pids_to_stop+=("$image_pid")
healthy=0
for ((i = 0; i < 100; i++)); do
    if env -i PATH=/usr/local/bin:/usr/bin:/bin GEARMAND_PORT="$port" sh -c "$health" >"$work/health.out" 2>&1; then
        healthy=1
        break
    fi
    kill -0 "$image_pid" 2>/dev/null || fail "the image's sprocketd exited: $(cat "$work/image.log")"
    sleep 0.1
done
((healthy)) || fail "the image's health check never passed: $(cat "$work/health.out")"
grep -q '^1\.1\.20+sprocket' "$work/health.out" || fail "the health check printed '$(cat "$work/health.out")'"
kill -TERM "$image_pid"
wait "$image_pid" 2>/dev/null || true
if env -i PATH=/usr/bin:/bin GEARMAND_PORT="$port" sh -c "$health" >/dev/null 2>&1; then
    fail "the health check passes with no server"
fi
[ -e "$image_data/sprocket-$port.db" ] || fail "the image's server kept no queue in its data directory"

step "apt-get purge sprocket: gearman-tools' programs back in /usr/bin"
apt-get purge -y -q -o Dpkg::Use-Pty=0 sprocket
for tool in gearman gearadmin; do
    [ -z "$(dpkg-divert --listpackage "/usr/bin/$tool")" ] || fail "/usr/bin/$tool is still diverted"
    [ ! -e "/usr/bin/$tool.gearman-tools" ] || fail "/usr/bin/$tool.gearman-tools is still there"
    want=$(awk -v f="usr/bin/$tool" '$2 == f { print $1 }' "$tools_md5sums")
    [ -f "/usr/bin/$tool" ] && [ ! -L "/usr/bin/$tool" ] || fail "/usr/bin/$tool is not a file again"
    [ "$(md5sum <"/usr/bin/$tool" | cut -d' ' -f1)" = "$want" ] || fail "/usr/bin/$tool is not gearman-tools' $tool"
done
[ ! -e /usr/sbin/sprocketd ] && [ ! -e /var/lib/sprocket ] && [ ! -e /var/log/sprocket ] ||
    fail "purge left /usr/sbin/sprocketd, /var/lib/sprocket or /var/log/sprocket"

echo
echo "packaging test passed"
