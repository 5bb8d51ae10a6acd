# Shared by scripts/run, scripts/test and .ci/run: make sure the Redis and
# PostgreSQL we need answer, starting them (and installing them from the
# distribution's packages, when we may) if they do not.
# shellcheck shell=bash

say() { printf '==> %s\n' "$*" >&2; }

# Answers PING at host:port? Uses bash's /dev/tcp, so no client is needed.
redis_answers() {
    local host=$1 port=$2 reply
    exec 3<>"/dev/tcp/$host/$port" 2>/dev/null || return 1
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

# ensure_redis HOST PORT: a redis-server answering there (local hosts only).
ensure_redis() {
    local host=${1:-127.0.0.1} port=${2:-6379}
    redis_answers "$host" "$port" && return 0
    case $host in
        127.0.0.1 | localhost | ::1) ;;
        *) say "Redis at $host:$port does not answer; start it or set APP__REDIS__URL"; return 1 ;;
    esac
    command -v redis-server >/dev/null || install_packages redis-server || return 1
    say "starting redis-server on $host:$port (no persistence)"
    mkdir -p "${TMPDIR:-/tmp}/user-api-redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --dir "${TMPDIR:-/tmp}/user-api-redis" --logfile "${TMPDIR:-/tmp}/user-api-redis/redis.log"
    for _ in $(seq 50); do
        redis_answers 127.0.0.1 "$port" && return 0
        sleep 0.1
    done
    say "redis-server did not come up; see ${TMPDIR:-/tmp}/user-api-redis/redis.log"
    return 1
}

# ensure_postgres: a PostgreSQL on 127.0.0.1:5432 that TEST_POSTGRES_URL can
# use; exports TEST_POSTGRES_URL.
ensure_postgres() {
    export TEST_POSTGRES_URL=${TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
    if ! port_open 127.0.0.1 5432; then
        if ! command -v pg_ctlcluster >/dev/null; then
            install_packages postgresql || return 1
        fi
        local version
        version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
        [[ -n $version ]] || { say "no PostgreSQL cluster found under /etc/postgresql"; return 1; }
        say "starting PostgreSQL $version"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || return 1
        for _ in $(seq 100); do
            port_open 127.0.0.1 5432 && break
            sleep 0.1
        done
    fi
    command -v psql >/dev/null || install_packages postgresql-client || return 1
    if ! psql "$TEST_POSTGRES_URL" -qAtc 'select 1' >/dev/null 2>&1; then
        # A fresh install only lets the postgres OS user in: give the
        # database user the password the tests use.
        say "setting a password for the postgres database user (local test server)"
        as_root runuser -u postgres -- psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
        psql "$TEST_POSTGRES_URL" -qAtc 'select 1' >/dev/null || {
            say "cannot log in to PostgreSQL as $TEST_POSTGRES_URL"
            return 1
        }
    fi
}

# host and port of a redis:// URL (default 127.0.0.1 6379)
redis_host_port() {
    local rest=${1#*://}
    rest=${rest##*@}
    rest=${rest%%/*}
    local host=${rest%%:*} port=6379
    [[ $rest == *:* ]] && port=${rest##*:}
    printf '%s %s\n' "${host:-127.0.0.1}" "$port"
}
