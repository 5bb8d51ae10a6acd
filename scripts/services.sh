# Shared by scripts/run, scripts/test and .ci/run: make sure the Redis and
# PostgreSQL we need answer, starting them (and installing them from the
# distribution's packages, when we may) if they do not.
# shellcheck shell=bash

say() { printf '==> %s\n' "$*" >&2; }

# Answers PING at host:port? Uses bash's /dev/tcp, so no client is needed.
# The braces matter: `exec 3<>... 2>/dev/null` alone would send all of the
# shell's later stderr to /dev/null.
redis_answers() {
    local host=$1 port=$2 reply
    { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3 || reply=""
    exec 3>&- 3<&-
    [[ $reply == +PONG* || $reply == -NOAUTH* ]]
}

port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

can_install() {
    [[ $(id -u) == 0 ]] || sudo -n true 2>/dev/null
}

as_root() {
    if [[ $(id -u) == 0 ]]; then "$@"; else sudo -n "$@"; fi
}

apt_updated=""
install_packages() {
    if ! command -v apt-get >/dev/null || ! can_install; then
        say "please install: $* (e.g. sudo apt-get install $*), then run this again"
        return 1
    fi
    if [[ -z $apt_updated ]]; then
        as_root apt-get update -qq && apt_updated=1
    fi
    say "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ensure_redis URL [OPT_IN]: a Redis answering at URL. A redis-server is
# started (and installed, if we may) only when URL is the default one,
# redis://127.0.0.1:6379[/db], or OPT_IN is 1: a typo in a URL must not
# bring up a second, empty Redis. What we start, we stop when the calling
# script exits (stop_started_redis, called from its EXIT trap).
started_redis_pid=""
ensure_redis() {
    local url=$1 opt_in=${2:-0} host port
    read -r host port < <(redis_host_port "$url")
    if [[ $url == rediss://* ]]; then
        # TLS: we cannot PING it from bash; an open port will do.
        port_open "$host" "$port" && return 0
        say "nothing answers at $host:$port (a rediss:// URL); start that Redis, or fix the URL"
        return 1
    fi
    redis_answers "$host" "$port" && return 0
    if [[ ! ($host == 127.0.0.1 || $host == localhost) || $port != 6379 ]] && [[ $opt_in != 1 ]]; then
        say "nothing answers as Redis at $host:$port; start your Redis there, fix the URL, or set START_REDIS=1 to have a local redis-server started on that port"
        return 1
    fi
    case $host in
        127.0.0.1 | localhost | ::1) ;;
        *) say "Redis at $host:$port does not answer, and only a local one can be started for you"; return 1 ;;
    esac
    command -v redis-server >/dev/null || install_packages redis-server || return 1
    local dir="${TMPDIR:-/tmp}/user-api-redis-$port"
    mkdir -p "$dir"
    say "starting redis-server on 127.0.0.1:$port (no persistence; stopped when this script exits; log: $dir/redis.log)"
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --dir "$dir" --logfile "$dir/redis.log" &
    started_redis_pid=$!
    for _ in $(seq 50); do
        redis_answers 127.0.0.1 "$port" && return 0
        sleep 0.1
    done
    say "redis-server did not come up; see $dir/redis.log"
    return 1
}

# Stops the redis-server ensure_redis started, if any.
stop_started_redis() {
    if [[ -n $started_redis_pid ]] && kill -0 "$started_redis_pid" 2>/dev/null; then
        say "stopping the redis-server this script started (pid $started_redis_pid)"
        kill "$started_redis_pid" 2>/dev/null || true
        wait "$started_redis_pid" 2>/dev/null || true
    fi
    started_redis_pid=""
}

# ensure_postgres: a PostgreSQL that TEST_POSTGRES_URL can use, on the host
# and port that URL names; exports TEST_POSTGRES_URL. A local Debian
# cluster is started (on that port) when nothing answers there.
ensure_postgres() {
    export TEST_POSTGRES_URL=${TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
    local host port
    read -r host port < <(url_host_port "$TEST_POSTGRES_URL" 5432)
    if ! port_open "$host" "$port"; then
        case $host in
            127.0.0.1 | localhost | ::1) ;;
            *) say "PostgreSQL at $host:$port (TEST_POSTGRES_URL) does not answer"; return 1 ;;
        esac
        if ! command -v pg_ctlcluster >/dev/null; then
            install_packages postgresql || return 1
        fi
        local version status=0
        version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
        [[ -n $version ]] || { say "no PostgreSQL cluster found under /etc/postgresql"; return 1; }
        say "starting PostgreSQL $version on port $port"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start -- -o "-p $port" || status=$?
        # 2: the cluster was already running (e.g. started by the package's
        # install on a systemd machine); it may just not be up yet.
        if [[ $status != 0 && $status != 2 ]]; then
            say "pg_ctlcluster $version main start failed (exit $status)"
            return 1
        fi
        for _ in $(seq 100); do
            port_open "$host" "$port" && break
            sleep 0.1
        done
        port_open "$host" "$port" || {
            say "PostgreSQL $version does not answer on $host:$port (pg_lsclusters shows the port it uses)"
            return 1
        }
    fi
    command -v psql >/dev/null || install_packages postgresql-client || return 1
    if ! psql "$TEST_POSTGRES_URL" -qAtc 'select 1' >/dev/null 2>&1; then
        # A fresh install only lets the postgres OS user in: give the
        # database user the password the tests use.
        say "setting a password for the postgres database user (local test server)"
        as_root runuser -u postgres -- psql -p "$port" -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
        psql "$TEST_POSTGRES_URL" -qAtc 'select 1' >/dev/null || {
            say "cannot log in to PostgreSQL as $TEST_POSTGRES_URL"
            return 1
        }
    fi
}

# url_host_port URL DEFAULT_PORT: host and port of a redis://, rediss:// or
# postgres:// URL (host 127.0.0.1 when empty).
url_host_port() {
    local rest=${1#*://} default_port=$2
    rest=${rest##*@}
    rest=${rest%%/*}
    rest=${rest%%\?*}
    local host=${rest%%:*} port=$default_port
    [[ $rest == *:* ]] && port=${rest##*:}
    printf '%s %s\n' "${host:-127.0.0.1}" "$port"
}

redis_host_port() {
    url_host_port "$1" 6379
}

# start_redis_cluster FIRST_PORT: a local Redis Cluster of 3 masters and 3
# replicas (redis-server --cluster-enabled yes on FIRST_PORT..FIRST_PORT+5,
# made with redis-cli --cluster create), data in a temporary directory;
# exports TEST_REDIS_CLUSTER_NODES (its seed nodes). stop_redis_cluster
# (called from the EXIT trap) stops it and removes the directory.
started_cluster_pids=()
started_cluster_dir=""
start_redis_cluster() {
    local first=${1:-17000} port node nodes=()
    command -v redis-cli >/dev/null || install_packages redis-tools || return 1
    for port in $(seq "$first" $((first + 5))); do
        if port_open 127.0.0.1 "$port"; then
            say "port $port is taken: cannot start the test Redis Cluster on $first-$((first + 5))"
            return 1
        fi
    done
    started_cluster_dir=$(mktemp -d "${TMPDIR:-/tmp}/user-api-cluster.XXXXXX")
    say "starting a Redis Cluster (3 masters, 3 replicas) on 127.0.0.1:$first-$((first + 5)) (data: $started_cluster_dir)"
    for port in $(seq "$first" $((first + 5))); do
        mkdir -p "$started_cluster_dir/$port"
        redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
            --cluster-config-file "$started_cluster_dir/$port/nodes.conf" \
            --cluster-node-timeout 1000 --save "" --appendonly no --repl-diskless-sync-delay 0 \
            --dir "$started_cluster_dir/$port" --logfile "$started_cluster_dir/$port/redis.log" \
            </dev/null >/dev/null 2>&1 &
        started_cluster_pids+=($!)
        nodes+=("127.0.0.1:$port")
    done
    for port in $(seq "$first" $((first + 5))); do
        for _ in $(seq 50); do
            redis_answers 127.0.0.1 "$port" && break
            sleep 0.1
        done
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$started_cluster_dir/create.log" 2>&1 || {
        say "redis-cli --cluster create failed; see $started_cluster_dir/create.log"
        return 1
    }
    for _ in $(seq 100); do
        local ok=0
        for node in "${nodes[@]}"; do
            redis-cli -h 127.0.0.1 -p "${node#*:}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && ok=$((ok + 1))
        done
        if [[ $ok == 6 ]]; then
            export TEST_REDIS_CLUSTER_NODES="${nodes[0]},${nodes[1]},${nodes[2]}"
            return 0
        fi
        sleep 0.1
    done
    say "the test Redis Cluster did not reach cluster_state:ok; see $started_cluster_dir"
    return 1
}

stop_redis_cluster() {
    local pid
    for pid in "${started_cluster_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${started_cluster_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    started_cluster_pids=()
    if [[ -n $started_cluster_dir ]]; then
        rm -rf "$started_cluster_dir"
        started_cluster_dir=""
    fi
}
