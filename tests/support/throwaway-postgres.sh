#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the lock tests: initdb in DIR, started on a free loopback
# port with a password, stopped (and DIR removed) on `stop` or when WATCH_PID exits.
#
#   throwaway-postgres.sh start DIR [WATCH_PID]   prints the cluster's URL on stdout
#   throwaway-postgres.sh stop DIR
#
# Uses Debian's server binaries (/usr/lib/postgresql/*/bin). As root (CI), the cluster runs
# as the `postgres` user (initdb refuses root), so DIR's parent must be searchable by it.
# Used by .ci/run and by tests/support/postgres.rs.
set -euo pipefail

command=${1:?usage: throwaway-postgres.sh start|stop DIR [WATCH_PID]}
dir=${2:?usage: throwaway-postgres.sh start|stop DIR [WATCH_PID]}
watch=${3:-}
password=sextant-test-pw

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
  exit 3
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$command" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$dir"
    fi
    printf '%s\n' "$password" > "$dir/pwfile"
    chmod 0644 "$dir/pwfile"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -A scram-sha-256 --pwfile="$dir/pwfile" \
      -E UTF8 --no-sync > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/pwfile"
    # A free loopback port: one nothing answers on.
    port=
    for _ in $(seq 1 200); do
      candidate=$(( 20000 + RANDOM % 40000 ))
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port=$candidate
        break
      fi
    done
    if [ -z "$port" ]; then
      echo "no free loopback port found" >&2
      exit 1
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
      start > /dev/null || { cat "$dir/server.log" >&2; exit 1; }
    if [ -n "$watch" ]; then
      (
        while kill -0 "$watch" 2>/dev/null; do sleep 1; done
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop || true
        rm -rf "$dir"
      ) < /dev/null > /dev/null 2>&1 &
    fi
    echo "postgres://postgres:$password@127.0.0.1:$port/postgres?sslmode=disable"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast stop > /dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "unknown command $command (start or stop)" >&2
    exit 2
    ;;
esac
