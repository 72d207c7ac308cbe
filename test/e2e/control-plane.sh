#!/bin/bash
# control-plane.sh - a real, all-in-one OpenStack Zed control plane from Debian 12's packages, for Berth's e2e tests.
#
#   up                       install missing packages, configure and start everything (idempotent)
#   down                     stop what this script started (PID files in /run/berth-aio); data kept
#   wipe                     down, then drop the DBs, DB users, RabbitMQ user, keys and images it created
#   status                   what runs, what answers, the compute services
#   fake-compute HOST        Debian's nova-compute with fake.FakeDriver as HOST (the benchmark peer), mapped to cell1
#   stop-fake-compute HOST   stop that nova-compute
#
# MariaDB 10.11, RabbitMQ 3.10 (reused when one runs), Keystone 22 (uwsgi), Glance 25 (file store), Placement 8
# (uwsgi), nova-api (uwsgi) / nova-conductor / nova-scheduler 26.2.2 with cell0 + cell1, and fake-neutron.py.
# Every listener is on 127.0.0.1. No systemd. Config in /etc/berth-aio, logs in /var/log/berth-aio, PID files in
# /run/berth-aio, state in /var/lib/berth-aio. Debian's own /etc/{keystone,glance,placement,nova} are left alone.
#
# Env: BERTH_AIO_PASSWORD (service users, DB users, RabbitMQ user `openstack`, demo; default secret),
# BERTH_AIO_ADMIN_PASSWORD (default admin), BERTH_AIO_DEBUG (true|false), BERTH_HOST (host in berth.conf,
# default berth-aio), BERTH_AIO_SKIP_APT=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ETC=/etc/berth-aio
LOG=/var/log/berth-aio
RUN=/run/berth-aio
STATE=/var/lib/berth-aio
PW=${BERTH_AIO_PASSWORD:-secret}
ADMIN_PW=${BERTH_AIO_ADMIN_PASSWORD:-admin}
DEBUG=${BERTH_AIO_DEBUG:-false}
BERTH_HOST=${BERTH_HOST:-berth-aio}
IP=127.0.0.1
KS=http://$IP:5000
RABBIT_USER=openstack
TRANSPORT=rabbit://$RABBIT_USER:$PW@$IP:5672/
DBS="keystone glance placement nova_api nova nova_cell0"
DB_USERS="keystone glance placement nova"
PACKAGES="mariadb-server rabbitmq-server keystone glance-api placement-api nova-api nova-conductor nova-scheduler
nova-compute python3-openstackclient python3-osc-placement python3-pymysql uwsgi-plugin-python3 crudini"
# start order; `down` stops them backwards, fake computes first
SHARED_SERVICES="mariadb epmd rabbitmq"
OPENSTACK_SERVICES="keystone glance-api placement-api fake-neutron nova-api nova-conductor nova-scheduler"
export DEBIAN_FRONTEND=noninteractive
# any Erlang node we cause to start (rabbitmqctl, rabbitmq-server) keeps its epmd on loopback
export ERL_EPMD_ADDRESS=127.0.0.1
# Debian's python3 and OpenStack tools first: an earlier python3 (pyenv) lacks the OpenStack libraries
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin

say() { echo "[berth-aio $(date +%T)] $*"; }
die() { say "ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- phases and timings
T0=$(date +%s)
PHASE=""
PHASE_T=$T0
TIMINGS=""
phase() {  # phase NAME: close the running phase (print and record its time), open NAME
    local now; now=$(date +%s)
    if [ -n "$PHASE" ]; then
        say "-- $PHASE: $((now - PHASE_T))s"
        TIMINGS="$TIMINGS $PHASE=$((now - PHASE_T))s"
    fi
    PHASE=$1; PHASE_T=$now
    [ -z "$PHASE" ] || say "== $PHASE"
}
finish_timings() {  # finish_timings COMMAND: print the total, append one line to the timings log
    phase ""
    local total=$(( $(date +%s) - T0 ))
    say "$1 done in ${total}s${TIMINGS:+ (}${TIMINGS# }${TIMINGS:+)}"
    echo "$(date -Is) $1 total=${total}s$TIMINGS" >> "$LOG/control-plane.timings"
}
on_exit() {  # a failed run is logged too, with the phase it failed in
    local rc=$?
    [ $rc = 0 ] || [ -z "$PHASE" ] || \
        echo "$(date -Is) ${COMMAND:-?} FAILED rc=$rc in $PHASE after $(( $(date +%s) - T0 ))s$TIMINGS" >> "$LOG/control-plane.timings"
}

# ---------------------------------------------------------------- ledger and stamps
# The ledger lists what this script created (DBs, DB users, the RabbitMQ user) so `wipe` drops only those.
ledger_add() { grep -qxF "$1" "$STATE/ledger" 2>/dev/null || echo "$1" >> "$STATE/ledger"; }
# A stamp records the inputs of a slow step that is done (db sync, bootstrap): a re-run skips it while they match.
stamp_ok()  { [ "$(cat "$STATE/stamps/$1" 2>/dev/null)" = "$2" ]; }
stamp_set() { echo "$2" > "$STATE/stamps/$1"; }
pkg_version() { dpkg-query -W -f='${Version}' "$1"; }
digest() { sha256sum | cut -c1-16; }

# ---------------------------------------------------------------- files
# render DEST OWNER:GROUP MODE < content: writes DEST only when its content differs; CHANGED=1 when it did
CHANGED=0
render() {
    local dest=$1 tmp
    tmp=$(mktemp "$dest.XXXXXX")
    cat > "$tmp"
    chown "$2" "$tmp"; chmod "$3" "$tmp"
    if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then
        rm -f "$tmp"; chown "$2" "$dest"; chmod "$3" "$dest"; CHANGED=0
    else
        mv -f "$tmp" "$dest"; CHANGED=1
    fi
}

# ---------------------------------------------------------------- processes (by PID file, never by name)
proc_token() {  # a word the command line of NAME's process must contain (guards against a reused PID)
    case $1 in
        keystone|placement-api|nova-api) echo "$1-uwsgi.ini" ;;
        fake-neutron) echo fake-neutron.py ;;
        mariadb) echo mariadbd ;;
        nova-compute-*) echo "$1.conf" ;;
        *) echo "$1" ;;
    esac
}
alive() {  # alive PID: exists and is not a zombie (PID 1 here may be slow to reap what start-stop-daemon left it)
    kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
pid_of() {  # pid_of NAME: prints the PID of NAME's running process; fails if it does not run
    local pidf=$RUN/$1.pid pid
    [ -s "$pidf" ] || return 1
    pid=$(cat "$pidf")
    alive "$pid" || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(proc_token "$1")" || return 1
    echo "$pid"
}
is_running() { pid_of "$1" >/dev/null; }

# start_daemon NAME USER CMD ARGS...: a foreground program in the background, output to $LOG/NAME.log
start_daemon() {
    local name=$1 user=$2 home; shift 2
    if is_running "$name"; then say "$name runs (pid $(pid_of "$name"))"; return 0; fi
    rm -f "$RUN/$name.pid"
    touch "$LOG/$name.log"; chown "$user" "$LOG/$name.log"
    home=$(getent passwd "$user" | cut -d: -f6); [ -d "$home" ] || home=/
    # env(1) execs the program, so the recorded PID is the program's own
    start-stop-daemon --start --background --make-pidfile --pidfile "$RUN/$name.pid" \
        --chuid "$user:$user" --chdir "$home" --output "$LOG/$name.log" \
        --startas /usr/bin/env -- HOME="$home" USER="$user" LOGNAME="$user" "$@"
    sleep 1
    is_running "$name" || { say "FAILED to start $name; tail of $LOG/$name.log:"; tail -20 "$LOG/$name.log"; return 1; }
    say "started $name (pid $(pid_of "$name"))"
}

start_uwsgi() {  # start_uwsgi NAME (ini: $ETC/NAME-uwsgi.ini, which names the pidfile and the log)
    local name=$1
    if is_running "$name"; then say "$name runs (uwsgi master pid $(pid_of "$name"))"; return 0; fi
    rm -f "$RUN/$name.pid"
    uwsgi --ini "$ETC/$name-uwsgi.ini"
    for _ in $(seq 1 50); do is_running "$name" && break; sleep 0.2; done
    is_running "$name" || { say "FAILED to start $name; tail of $LOG/$name.log:"; tail -20 "$LOG/$name.log"; return 1; }
    say "started $name (uwsgi master pid $(pid_of "$name"))"
}

stop_service() {  # stop_service NAME [SECONDS]: TERM, wait, then KILL; removes the PID file
    local name=$1 t=${2:-30} pid
    if ! pid=$(pid_of "$name"); then rm -f "$RUN/$name.pid"; return 0; fi
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((t * 5))); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then
        say "$name did not stop in ${t}s: KILL $pid"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$name.pid"
}

wait_http() {  # wait_http URL SECONDS
    for _ in $(seq 1 $(($2 * 5))); do
        curl -s -o /dev/null -m 2 "$1" && return 0
        sleep 0.2
    done
    die "no answer from $1 after $2s"
}

fake_computes() {  # hosts of the fake computes that have a PID file
    local f
    for f in "$RUN"/nova-compute-*.pid; do [ -e "$f" ] && basename "$f" .pid | sed 's/^nova-compute-//'; done
    return 0
}

# ---------------------------------------------------------------- config snippets
authtoken() {  # [keystone_authtoken] body for service user $1
    cat <<EOF
www_authenticate_uri = $KS
auth_url = $KS
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $PW
service_token_roles_required = true
EOF
}
ksa() {  # keystoneauth password-plugin options of a client section, user $1
    cat <<EOF
auth_type = password
auth_url = $KS/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $PW
region_name = RegionOne
EOF
}
uwsgi_ini() {  # uwsgi_ini NAME USER PORT WSGI_FILE PROCESSES THREADS [ENV=VALUE...]
    local name=$1 user=$2 port=$3 wsgi=$4 processes=$5 threads=$6 e; shift 6
    cat <<EOF
[uwsgi]
plugins = python3
master = true
die-on-term = true
no-orphans = true
lazy-apps = true
enable-threads = true
thunder-lock = true
buffer-size = 65535
processes = $processes
threads = $threads
listen = 100
http-socket = $IP:$port
http-auto-chunked = true
http-chunked-input = true
wsgi-manage-chunked-input = true
# http-socket does no keep-alive: without this, Python clients reuse a closed socket and the next request fails
add-header = Connection: close
uid = $user
gid = $user
chdir = /var/lib/$user
wsgi-file = $wsgi
name = $name
pidfile = $RUN/$name.pid
daemonize = $LOG/$name.log
EOF
    for e in "$@"; do echo "env = $e"; done
}

mysql_q() { mysql -N -B -e "$1"; }
db_has_tables() { [ "$(mysql_q "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='$1'")" -gt 0 ]; }

###################################################################### up
phase_apt() {
    phase apt
    local missing="" p
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    if [ -z "$missing" ]; then say "all packages installed"; return 0; fi
    [ "${BERTH_AIO_SKIP_APT:-0}" != 1 ] || die "missing packages:$missing (BERTH_AIO_SKIP_APT=1)"
    say "installing:$missing (apt-get --no-install-recommends, log $LOG/apt-install.log)"
    debconf-set-selections "$HERE/debconf-preseed.txt"
    # policy-rc.d exit 101 keeps the postinst scripts from starting daemons (we start them ourselves); only for
    # this install: one we put there goes away again
    local own_policy=0 rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=1
    fi
    # shellcheck disable=SC2086
    { apt-get update && apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold $missing; } >> "$LOG/apt-install.log" 2>&1 || rc=$?
    [ $own_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || { tail -30 "$LOG/apt-install.log"; die "apt-get install failed (exit $rc)"; }
}

ensure_mariadb() {  # reuse a running MariaDB, or start our own on 127.0.0.1 (a fresh machine)
    if mysqladmin ping >/dev/null 2>&1; then
        is_running mariadb || say "reusing the running MariaDB"
        return 0
    fi
    render "$ETC/mariadb.cnf" root:root 644 <<'EOF'
[mysqld]
bind-address = 127.0.0.1
max_connections = 1000
innodb_buffer_pool_size = 256M
character-set-server = utf8mb3
collation-server = utf8mb3_general_ci
EOF
    install -d -o mysql -g mysql -m 755 /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db \
        > "$LOG/mariadb-install-db.log" 2>&1
    start_daemon mariadb mysql /usr/sbin/mariadbd --defaults-extra-file="$ETC/mariadb.cnf" \
        --pid-file=/run/mysqld/mysqld.pid
    for _ in $(seq 1 100); do mysqladmin ping >/dev/null 2>&1 && break; sleep 0.2; done
    mysqladmin ping >/dev/null || die "MariaDB does not answer"
}

phase_mariadb() {
    phase mariadb
    ensure_mariadb
    # the services hold pools of connections (oslo.db: 5 + 50 overflow each); 151, MariaDB's default, runs out
    if [ "$(mysql_q 'SELECT @@max_connections')" -lt 1000 ]; then
        mysql_q "SET GLOBAL max_connections = 1000"; say "max_connections raised to 1000 (runtime only)"
    fi
    local db u h
    for db in $DBS; do
        if [ -z "$(mysql_q "SHOW DATABASES LIKE '$db'")" ]; then
            mysql_q "CREATE DATABASE $db CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci"
            ledger_add "db:$db"
        fi
    done
    for u in $DB_USERS; do
        for h in localhost %; do
            if [ -z "$(mysql_q "SELECT 1 FROM mysql.user WHERE user='$u' AND host='$h'")" ]; then
                mysql_q "CREATE USER '$u'@'$h' IDENTIFIED BY '$PW'"; ledger_add "dbuser:$u@$h"
            else
                mysql_q "ALTER USER '$u'@'$h' IDENTIFIED BY '$PW'"
            fi
        done
    done
    local pair
    for pair in keystone:keystone glance:glance placement:placement nova:nova_api nova:nova nova:nova_cell0; do
        for h in localhost %; do mysql_q "GRANT ALL PRIVILEGES ON ${pair#*:}.* TO '${pair%%:*}'@'$h'"; done
    done
}

# A running node is registered with epmd; asking epmd first keeps rabbitmqctl (an Erlang node itself) from starting
# a stray epmd that no PID file of ours would know.
rabbit_up() { epmd -names >/dev/null 2>&1 && rabbitmqctl -q status >/dev/null 2>&1; }

ensure_rabbitmq() {  # reuse a running RabbitMQ, or start our own node on 127.0.0.1 (a fresh machine)
    if rabbit_up; then
        is_running rabbitmq || say "reusing the running RabbitMQ"
        return 0
    fi
    if (exec 3<>"/dev/tcp/$IP/5672") 2>/dev/null; then
        die "something listens on $IP:5672 but rabbitmqctl cannot reach it; fix rabbitmqctl or stop it"
    fi
    # node rabbit@localhost; AMQP and the Erlang distribution on 127.0.0.1 only
    cat > /etc/rabbitmq/rabbitmq-env.conf <<'EOF'
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=5672
ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
    cat > /etc/rabbitmq/rabbitmq.conf <<'EOF'
listeners.tcp.default = 127.0.0.1:5672
loopback_users.guest = true
EOF
    # our own epmd on loopback, or Erlang starts one on every interface
    epmd -names >/dev/null 2>&1 || start_daemon epmd rabbitmq /usr/bin/epmd -address 127.0.0.1
    install -d -o rabbitmq -g rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
    start_daemon rabbitmq rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
    rabbitmqctl -q wait --timeout 120 /var/lib/rabbitmq/mnesia/rabbit@localhost.pid
}

phase_rabbitmq() {
    phase rabbitmq
    ensure_rabbitmq
    if ! rabbitmqctl -q list_user_permissions "$RABBIT_USER" 2>/dev/null | grep -q '^/[[:space:]]'; then
        if ! rabbitmqctl -q list_users | grep -q "^${RABBIT_USER}[[:space:]]"; then
            rabbitmqctl -q add_user "$RABBIT_USER" "$PW"; ledger_add "rabbituser:$RABBIT_USER"
            rabbitmqctl -q set_user_tags "$RABBIT_USER" administrator
        fi
        rabbitmqctl -q set_permissions -p / "$RABBIT_USER" '.*' '.*' '.*'
    fi
    rabbitmqctl -q authenticate_user "$RABBIT_USER" "$PW" >/dev/null 2>&1 \
        || rabbitmqctl -q change_password "$RABBIT_USER" "$PW"
}

openrc() {  # openrc USER PASSWORD PROJECT WHO
    cat <<EOF
# $4 credentials of the berth-aio control plane (source me)
export OS_AUTH_URL=$KS/v3
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=$1
export OS_PASSWORD=$2
export OS_PROJECT_NAME=$3
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
export OS_INTERFACE=public
# 2.37+ is needed for 'openstack server create --nic none'
export OS_COMPUTE_API_VERSION=2.37
EOF
}
write_openrcs() {
    render "$ETC/openrc" root:root 644 < <(openrc admin "$ADMIN_PW" admin admin)
    render "$ETC/demo-openrc" root:root 644 < <(openrc demo "$PW" demo "demo (member, reader)")
}

phase_keystone() {
    phase keystone
    local restart=0 v
    install -d -o keystone -g keystone -m 700 "$STATE/keystone"
    render "$ETC/keystone.conf" root:keystone 640 <<EOF
[DEFAULT]
debug = $DEBUG
[database]
connection = mysql+pymysql://keystone:$PW@$IP/keystone?charset=utf8
[token]
provider = fernet
[fernet_tokens]
key_repository = $STATE/keystone/fernet-keys/
[credential]
key_repository = $STATE/keystone/credential-keys/
EOF
    restart=$((restart | CHANGED))
    render "$ETC/keystone-uwsgi.ini" root:root 644 < <(uwsgi_ini keystone keystone 5000 \
        /usr/bin/keystone-wsgi-public 2 2 "OS_KEYSTONE_CONFIG_DIR=$ETC" "OS_KEYSTONE_CONFIG_FILES=keystone.conf")
    restart=$((restart | CHANGED))
    [ $restart = 0 ] || stop_service keystone
    local km=(keystone-manage --config-file "$ETC/keystone.conf")
    v=$(pkg_version keystone)
    db_has_tables keystone || rm -f "$STATE/stamps/keystone-"*
    if stamp_ok keystone-db "$v"; then say "keystone db_sync: done for $v"; else
        runuser -u keystone -- "${km[@]}" db_sync >> "$LOG/keystone-manage.log" 2>&1
        stamp_set keystone-db "$v"
    fi
    [ -f "$STATE/keystone/fernet-keys/0" ] || \
        "${km[@]}" fernet_setup --keystone-user keystone --keystone-group keystone >> "$LOG/keystone-manage.log" 2>&1
    [ -f "$STATE/keystone/credential-keys/0" ] || \
        "${km[@]}" credential_setup --keystone-user keystone --keystone-group keystone >> "$LOG/keystone-manage.log" 2>&1
    v=$(echo "$ADMIN_PW $KS" | digest)
    if stamp_ok keystone-bootstrap "$v"; then say "keystone bootstrap: done"; else
        runuser -u keystone -- "${km[@]}" bootstrap --bootstrap-password "$ADMIN_PW" \
            --bootstrap-admin-url "$KS/v3/" --bootstrap-internal-url "$KS/v3/" \
            --bootstrap-public-url "$KS/v3/" --bootstrap-region-id RegionOne >> "$LOG/keystone-manage.log" 2>&1
        stamp_set keystone-bootstrap "$v"
    fi
    start_uwsgi keystone
    wait_http "$KS/v3" 60
    write_openrcs
    v=$( (cat "$HERE/keystone-setup.py"; echo "$PW $ADMIN_PW") | digest)
    if stamp_ok keystone-setup "$v"; then say "keystone users and catalog: done"; else
        # shellcheck disable=SC1091
        (. "$ETC/openrc"; BERTH_AIO_PASSWORD=$PW /usr/bin/python3 "$HERE/keystone-setup.py")
        stamp_set keystone-setup "$v"
    fi
}

phase_glance() {
    phase glance
    install -d -o glance -g glance -m 750 "$STATE/glance" "$STATE/glance/images" "$STATE/glance/tmp"
    # container_formats keeps Glance's default, which includes docker
    render "$ETC/glance-api.conf" root:glance 640 <<EOF
[DEFAULT]
debug = $DEBUG
bind_host = $IP
bind_port = 9292
workers = 1
[database]
connection = mysql+pymysql://glance:$PW@$IP/glance?charset=utf8
[keystone_authtoken]
$(authtoken glance)
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = $STATE/glance/images/
[oslo_concurrency]
lock_path = $STATE/glance/tmp
EOF
    [ $CHANGED = 0 ] || stop_service glance-api
    local v; v=$(pkg_version glance-api)
    db_has_tables glance || rm -f "$STATE/stamps/glance-db"
    if stamp_ok glance-db "$v"; then say "glance db_sync: done for $v"; else
        runuser -u glance -- glance-manage --config-file "$ETC/glance-api.conf" db_sync >> "$LOG/glance-manage.log" 2>&1
        stamp_set glance-db "$v"
    fi
    start_daemon glance-api glance /usr/bin/glance-api --config-file "$ETC/glance-api.conf"
}

phase_placement() {
    phase placement
    local restart=0
    render "$ETC/placement.conf" root:placement 640 <<EOF
[DEFAULT]
debug = $DEBUG
[placement_database]
connection = mysql+pymysql://placement:$PW@$IP/placement?charset=utf8
[api]
auth_strategy = keystone
[keystone_authtoken]
$(authtoken placement)
EOF
    restart=$((restart | CHANGED))
    render "$ETC/placement-api-uwsgi.ini" root:root 644 < <(uwsgi_ini placement-api placement 8778 \
        /usr/bin/placement-api 2 1 "OS_PLACEMENT_CONFIG_DIR=$ETC")
    restart=$((restart | CHANGED))
    [ $restart = 0 ] || stop_service placement-api
    local v; v=$(pkg_version placement-api)
    db_has_tables placement || rm -f "$STATE/stamps/placement-db"
    if stamp_ok placement-db "$v"; then say "placement db sync: done for $v"; else
        runuser -u placement -- placement-manage --config-file "$ETC/placement.conf" db sync \
            >> "$LOG/placement-manage.log" 2>&1
        stamp_set placement-db "$v"
    fi
    start_uwsgi placement-api
}

phase_fake_neutron() {
    phase fake-neutron
    # a copy outside the work tree, which the nova user may not be able to read
    render "$STATE/fake-neutron.py" root:root 755 < "$HERE/fake-neutron.py"
    [ $CHANGED = 0 ] || stop_service fake-neutron
    start_daemon fake-neutron nova /usr/bin/python3 "$STATE/fake-neutron.py" 9696
}

nova_conf() {
    cat <<EOF
[DEFAULT]
debug = $DEBUG
my_ip = $IP
state_path = $STATE/nova
transport_url = $TRANSPORT
# a container cannot move between hosts: Berth resizes on the instance's own host, so nova-api must let the
# scheduler pick the source host for a resize
allow_resize_to_same_host = True
[api]
auth_strategy = keystone
[api_database]
connection = mysql+pymysql://nova:$PW@$IP/nova_api?charset=utf8
[database]
connection = mysql+pymysql://nova:$PW@$IP/nova?charset=utf8
[keystone_authtoken]
$(authtoken nova)
[service_user]
send_service_user_token = true
$(ksa nova)
[placement]
$(ksa placement)
[glance]
region_name = RegionOne
[neutron]
$(ksa neutron)
service_metadata_proxy = false
[cinder]
os_region_name = RegionOne
[quota]
# the defaults (10 instances, 20 cores) are too low for the 20-server benchmark
instances = -1
cores = -1
ram = -1
[conductor]
workers = 1
[scheduler]
workers = 1
[vnc]
enabled = false
[oslo_concurrency]
lock_path = $STATE/nova/tmp
[oslo_messaging_notifications]
# a real nova-compute emits these; keep them on so Berth can be compared with it
driver = messagingv2
[notifications]
notification_format = both
EOF
}

start_fake_compute() {  # start_fake_compute HOST
    local host=$1 name=nova-compute-$1
    render "$ETC/$name.conf" root:nova 640 <<EOF
# overlay on $ETC/nova.conf: Debian's nova-compute with the fake virt driver as host $host
[DEFAULT]
host = $host
compute_driver = fake.FakeDriver
debug = $DEBUG
EOF
    [ $CHANGED = 0 ] || stop_service "$name"
    start_daemon "$name" nova /usr/bin/nova-compute --config-file "$ETC/nova.conf" --config-file "$ETC/$name.conf"
}

phase_nova() {
    phase nova
    local restart=0 computes="" v h
    install -d -o nova -g nova -m 750 "$STATE/nova" "$STATE/nova/tmp" "$STATE/nova/instances"
    render "$ETC/nova.conf" root:nova 640 < <(nova_conf)
    restart=$((restart | CHANGED))
    # The same file as Debian's default path, so the stock commands an operator types (`nova-manage cell_v2
    # discover_hosts`, `nova-status`) work without --config-file. Debian's original is kept once, beside it.
    if [ -f /etc/nova/nova.conf ] && [ ! -f /etc/nova/nova.conf.dpkg-dist-orig ] && ! grep -q '^# berth-aio' /etc/nova/nova.conf; then
        cp -p /etc/nova/nova.conf /etc/nova/nova.conf.dpkg-dist-orig
    fi
    render /etc/nova/nova.conf root:nova 640 < <(echo "# berth-aio: a copy of $ETC/nova.conf (test/e2e/control-plane.sh)"; nova_conf)
    # nova-api-wsgi reads the paste pipeline from the first of OS_NOVA_CONFIG_FILES (Debian's api-paste.ini)
    render "$ETC/nova-api-uwsgi.ini" root:root 644 < <(uwsgi_ini nova-api nova 8774 \
        /usr/bin/nova-api-wsgi 2 1 "OS_NOVA_CONFIG_DIR=$ETC" "OS_NOVA_CONFIG_FILES=/etc/nova/api-paste.ini;nova.conf")
    [ $CHANGED = 0 ] || stop_service nova-api
    if [ $restart = 1 ]; then
        computes=$(fake_computes)
        for h in $computes; do stop_service "nova-compute-$h"; done
        stop_service nova-scheduler; stop_service nova-conductor; stop_service nova-api
    fi
    local nm=(runuser -u nova -- nova-manage --config-file "$ETC/nova.conf")
    v=$(pkg_version nova-common)
    db_has_tables nova_api || rm -f "$STATE/stamps/nova-"*
    if stamp_ok nova-api-db "$v"; then say "nova api_db sync: done for $v"; else
        "${nm[@]}" api_db sync >> "$LOG/nova-manage.log" 2>&1
        stamp_set nova-api-db "$v"
    fi
    local cells; cells=$(mysql_q "SELECT name FROM nova_api.cell_mappings")
    echo "$cells" | grep -qx cell0 || "${nm[@]}" cell_v2 map_cell0 \
        --database_connection "mysql+pymysql://nova:$PW@$IP/nova_cell0?charset=utf8" >> "$LOG/nova-manage.log" 2>&1
    echo "$cells" | grep -qx cell1 || "${nm[@]}" cell_v2 create_cell --name=cell1 --verbose >> "$LOG/nova-manage.log" 2>&1
    if ! db_has_tables nova || ! db_has_tables nova_cell0; then rm -f "$STATE/stamps/nova-db"; fi
    if stamp_ok nova-db "$v"; then say "nova db sync (cell0, cell1): done for $v"; else
        "${nm[@]}" db sync >> "$LOG/nova-manage.log" 2>&1
        stamp_set nova-db "$v"
    fi
    say "cells: $(mysql_q "SELECT name FROM nova_api.cell_mappings" | tr '\n' ' ')"
    start_uwsgi nova-api
    start_daemon nova-conductor nova /usr/bin/nova-conductor --config-file "$ETC/nova.conf"
    start_daemon nova-scheduler nova /usr/bin/nova-scheduler --config-file "$ETC/nova.conf"
    for h in $computes; do start_fake_compute "$h"; done
}

phase_berth_conf() {
    phase berth.conf
    install -d -m 700 "$STATE/$BERTH_HOST"
    render "$ETC/berth.conf" root:root 640 <<EOF
# Berth (berth-compute) for the berth-aio control plane, written by test/e2e/control-plane.sh.
# Option names are nova.conf's own; [docker] is Berth's.
[DEFAULT]
host = $BERTH_HOST
state_path = $STATE/$BERTH_HOST
transport_url = $TRANSPORT
report_interval = 10
debug = $DEBUG

[oslo_messaging_rabbit]
# oslo.messaging's defaults, spelled out: the queues must match what the Python services declare
amqp_durable_queues = false
amqp_auto_delete = false
rabbit_ha_queues = false
rabbit_quorum_queue = false
rabbit_transient_queues_ttl = 1800
heartbeat_timeout_threshold = 60
heartbeat_rate = 2
rabbit_retry_interval = 1
rabbit_retry_backoff = 2
rabbit_interval_max = 30
rabbit_qos_prefetch_count = 0

[oslo_messaging_notifications]
driver = messagingv2

[notifications]
notification_format = both

[placement]
$(ksa nova)

[service_user]
send_service_user_token = true
$(ksa nova)

[glance]
# no auth options of its own: Glance is called with [service_user]'s
region_name = RegionOne

[docker]
host_url = unix:///var/run/docker.sock
EOF
}

phase_smoke() {
    phase smoke
    wait_http http://$IP:9292/ 60
    wait_http http://$IP:8778/ 60
    wait_http http://$IP:8774/ 60
    wait_http http://$IP:9696/ 10
    # shellcheck disable=SC1091
    (. "$ETC/openrc"; /usr/bin/python3 "$HERE/smoke-check.py" 120)
}

cmd_up() {
    [[ $PW =~ ^[A-Za-z0-9._~-]+$ ]] || die "BERTH_AIO_PASSWORD must be URL-safe ([A-Za-z0-9._~-]): it goes into transport_url"
    [[ $BERTH_HOST =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "BERTH_HOST '$BERTH_HOST' is not a host name"
    phase_apt
    phase_mariadb
    phase_rabbitmq
    phase_keystone
    phase_glance
    phase_placement
    phase_fake_neutron
    phase_nova
    phase_berth_conf
    phase_smoke
    finish_timings up
    say "control plane up: . $ETC/openrc; Berth config $ETC/berth.conf; logs $LOG"
}

###################################################################### down, wipe, status
stop_openstack() {  # the fake computes, then the OpenStack services, newest first
    local h n
    for h in $(fake_computes); do stop_service "nova-compute-$h"; done
    for n in $(echo "$OPENSTACK_SERVICES" | tr ' ' '\n' | tac); do stop_service "$n"; done
}

stop_shared() {  # RabbitMQ, epmd and MariaDB, where this script started them (a PID file says so)
    stop_service rabbitmq 60
    stop_service epmd
    stop_service mariadb 60
}

cmd_down() {
    stop_openstack
    stop_shared
    say "stopped what control-plane.sh started (MariaDB / RabbitMQ started by others keep running)"
    finish_timings down
}

cmd_wipe() {
    local item
    stop_openstack
    if grep -q '^db' "$STATE/ledger" 2>/dev/null; then ensure_mariadb; fi
    if grep -q '^rabbituser:' "$STATE/ledger" 2>/dev/null; then ensure_rabbitmq; fi
    while read -r item; do
        case $item in
            db:*) mysql_q "DROP DATABASE IF EXISTS ${item#db:}"; say "dropped database ${item#db:}" ;;
            dbuser:*) item=${item#dbuser:}; mysql_q "DROP USER IF EXISTS '${item%@*}'@'${item#*@}'"; say "dropped DB user $item" ;;
            rabbituser:*) rabbitmqctl -q delete_user "${item#rabbituser:}" >/dev/null; say "deleted RabbitMQ user ${item#rabbituser:}" ;;
        esac
    done < <(cat "$STATE/ledger" 2>/dev/null)
    if mysqladmin ping >/dev/null 2>&1; then
        for item in $DBS; do
            [ -z "$(mysql_q "SHOW DATABASES LIKE '$item'")" ] || say "kept database $item: control-plane.sh did not create it"
        done
    fi
    stop_shared
    # keystone keys, glance images, nova state, stamps, ledger, Berth state; and the generated config
    find "$STATE" "$ETC" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    say "wiped; the next 'up' starts from scratch (logs kept in $LOG)"
    finish_timings wipe
}

cmd_status() {
    local n pid port code
    printf '%-28s %-10s %s\n' SERVICE STATE DETAIL
    for n in $SHARED_SERVICES $OPENSTACK_SERVICES $(fake_computes | sed 's/^/nova-compute-/'); do
        if pid=$(pid_of "$n"); then
            printf '%-28s %-10s pid %s\n' "$n" running "$pid"
        else
            case $n in
                mariadb) mysqladmin ping >/dev/null 2>&1 && printf '%-28s %-10s %s\n' "$n" reused "not started by this script" && continue ;;
                rabbitmq) rabbit_up && printf '%-28s %-10s %s\n' "$n" reused "not started by this script" && continue ;;
                epmd) continue ;;
            esac
            printf '%-28s %-10s\n' "$n" stopped
        fi
    done
    for port in 5000 9292 8778 8774 9696; do
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$IP:$port/" || true)
        printf '%-28s %-10s\n' "http://$IP:$port" "$([ "$code" = 000 ] && echo down || echo "HTTP $code")"
    done
    if [ -f "$ETC/openrc" ]; then
        # shellcheck disable=SC1091
        (. "$ETC/openrc"; /usr/bin/python3 "$HERE/smoke-check.py" 0) || true
    else
        say "no $ETC/openrc: run '$0 up'"
    fi
}

###################################################################### fake compute
check_host_arg() { [[ ${1:-} =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "usage: $0 $2 HOST (a host name)"; }

cmd_fake_compute() {
    local host=$1 node=""
    [ -f "$ETC/nova.conf" ] || die "no $ETC/nova.conf: run '$0 up' first"
    start_fake_compute "$host"
    # the compute node record appears once the service has started and run its first resource update
    for _ in $(seq 1 120); do
        node=$(mysql_q "SELECT 1 FROM nova.compute_nodes WHERE host='$host' AND deleted=0")
        [ -z "$node" ] || break
        is_running "nova-compute-$host" || { tail -20 "$LOG/nova-compute-$host.log"; die "nova-compute-$host died"; }
        sleep 1
    done
    [ -n "$node" ] || die "no compute node for $host after 120s (see $LOG/nova-compute-$host.log)"
    if [ -z "$(mysql_q "SELECT 1 FROM nova_api.host_mappings WHERE host='$host'")" ]; then
        runuser -u nova -- nova-manage --config-file "$ETC/nova.conf" cell_v2 discover_hosts --verbose \
            >> "$LOG/nova-manage.log" 2>&1
    fi
    [ -n "$(mysql_q "SELECT 1 FROM nova_api.host_mappings WHERE host='$host'")" ] || die "$host is not mapped to a cell"
    finish_timings "fake-compute $host"
    say "nova-compute $host (fake.FakeDriver) up and mapped to cell1; log $LOG/nova-compute-$host.log"
}

###################################################################### main
[ "$(id -u)" = 0 ] || die "run as root (it manages services, users and databases)"
mkdir -p "$LOG" "$RUN" "$ETC" "$STATE/stamps"
chmod 755 "$LOG" "$RUN" "$ETC" "$STATE"
COMMAND="$*"
trap on_exit EXIT
case ${1:-} in
    up) cmd_up ;;
    down) cmd_down ;;
    wipe) cmd_wipe ;;
    status) cmd_status ;;
    fake-compute) check_host_arg "${2:-}" fake-compute; cmd_fake_compute "$2" ;;
    stop-fake-compute) check_host_arg "${2:-}" stop-fake-compute; stop_service "nova-compute-$2" ;;
    *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
