#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the postgres sink's tests and benchmark.
#
#   eval "$(scripts/postgres-for-tests.sh start)"   # prints the exports below; the cluster runs
#   scripts/postgres-for-tests.sh halt              # crash it (immediate stop), data kept
#   scripts/postgres-for-tests.sh resume            # start it again on the same port
#   scripts/postgres-for-tests.sh stop              # stop it and delete its directory
#
# start exports GATEHOUSE_TEST_POSTGRES_URL (postgres://user:password@127.0.0.1:PORT/db),
# GATEHOUSE_TEST_POSTGRES_DIR (data, socket, server.log) and GATEHOUSE_TEST_POSTGRES_LOG.
# The other commands read GATEHOUSE_TEST_POSTGRES_DIR. As root the server runs as the
# `postgres` user (initdb refuses root); PostgreSQL is installed with apt only when missing.
# GATEHOUSE_TEST_POSTGRES_FSYNC=on keeps fsync (the benchmark); tests turn it off for speed,
# which still survives a server crash (only an OS crash would lose data).
set -euo pipefail

find_bin() {
  local dir
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/initdb" ] && { echo "$dir"; return; }; done
  command -v initdb >/dev/null && { dirname "$(readlink -f "$(command -v initdb)")"; return; }
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local bin
  if ! bin=$(find_bin); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "postgres-for-tests: installing postgresql" >&2
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
      bin=$(find_bin)
    else
      echo "postgres-for-tests: no initdb found and cannot install postgresql (not root)" >&2
      exit 1
    fi
  fi
  local dir port password=gatehouse-test
  dir=$(mktemp -d /tmp/gatehouse-pg.XXXXXX)
  chmod 755 "$dir"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "$password" > "$dir/pwfile"
  echo "$port" > "$dir/port"
  echo "$bin" > "$dir/bin"
  [ "$(id -u)" = 0 ] && chown -R postgres "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U gatehouse --pwfile="$dir/pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
log_connections = on
fsync = ${GATEHOUSE_TEST_POSTGRES_FSYNC:-off}
max_connections = 200
EOF
  [ "${GATEHOUSE_TEST_POSTGRES_FSYNC:-off}" = off ] && echo "full_page_writes = off" >>"$dir/data/postgresql.conf"
  GATEHOUSE_TEST_POSTGRES_DIR=$dir resume
  as_owner "$bin/createdb" -h "$dir" -p "$port" -U gatehouse gatehouse
  echo "export GATEHOUSE_TEST_POSTGRES_URL=postgres://gatehouse:$password@127.0.0.1:$port/gatehouse"
  echo "export GATEHOUSE_TEST_POSTGRES_DIR=$dir"
  echo "export GATEHOUSE_TEST_POSTGRES_LOG=$dir/server.log"
}

resume() {
  local dir=${GATEHOUSE_TEST_POSTGRES_DIR:?set by start}
  as_owner "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 start >/dev/null
}

halt() {
  local dir=${GATEHOUSE_TEST_POSTGRES_DIR:?set by start}
  as_owner "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
}

stop() {
  local dir=${GATEHOUSE_TEST_POSTGRES_DIR:-}
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  as_owner "$(cat "$dir/bin")/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  resume) resume ;;
  halt) halt ;;
  stop) stop ;;
  *) echo "usage: $0 start|halt|resume|stop" >&2; exit 2 ;;
esac
