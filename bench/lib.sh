# shellcheck shell=bash disable=SC2034  # sourced; bench_url etc. are read by the scripts
# Shared by the bench scripts (sourced). bench_token PORT: signs up a bench user on the cars
# example (signup is on there), logs in and prints the token.
bench_token() {
  local port=$1 user="bench$RANDOM$RANDOM"
  curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"username\":\"$user\",\"password\":\"bench-password\"}" \
    "http://127.0.0.1:$port/api/auth/register" >/dev/null
  curl -sf -X POST -H 'Content-Type: application/json' \
    -d "{\"username\":\"$user\",\"password\":\"bench-password\"}" \
    "http://127.0.0.1:$port/api/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}
# Throttling is measured apart from the capabilities: the scripts turn it off.
export LIVEBASE_AUTH_THROTTLE_ANONYMOUS=unlimited LIVEBASE_AUTH_THROTTLE_USER=unlimited

# Storage choice of the bench scripts: BENCH_STORAGE=sqlite (default) or postgres.
#   bench_storage_start        postgres: starts a private PostgreSQL 15 (scripts/pg.sh) in a
#                              temp dir on 127.0.0.1:${BENCH_PG_PORT:-56432}; sqlite: nothing
#   bench_storage_url DIR NAME sets bench_url to a fresh store for one server run:
#                              sqlite:DIR/NAME.db (removed first), or the PostgreSQL URL with a
#                              new schema (schema=NAME_<pid>_<n>, created by the server)
#   bench_storage_stop         stops that PostgreSQL and removes its dir (call it from the
#                              script's EXIT trap; harmless when nothing was started)
BENCH_STORAGE=${BENCH_STORAGE:-sqlite}
bench_pg_dir=
bench_pg_url=
bench_url=
bench_schema_n=0
bench_storage_start() {
  [ "$BENCH_STORAGE" = postgres ] || return 0
  [ -z "$bench_pg_dir" ] || return 0
  bench_pg_dir=$(mktemp -d /tmp/lb-bench-pg.XXXXXX)
  bench_pg_url=$(scripts/pg.sh start "$bench_pg_dir" "${BENCH_PG_PORT:-56432}") ||
    { echo "cannot start PostgreSQL" >&2; exit 1; }
}
bench_storage_url() {  # DIR NAME
  if [ "$BENCH_STORAGE" = postgres ]; then
    bench_schema_n=$((bench_schema_n + 1))
    bench_url="$bench_pg_url?schema=${2}_$$_$bench_schema_n"
  else
    rm -f "$1/$2".db*
    bench_url="sqlite:$1/$2.db"
  fi
}
bench_storage_stop() {
  if [ -n "$bench_pg_dir" ]; then scripts/pg.sh stop "$bench_pg_dir" || true; bench_pg_dir=; fi
}
case "$BENCH_STORAGE" in
  sqlite|postgres) ;;
  *) echo "BENCH_STORAGE must be sqlite or postgres, not '$BENCH_STORAGE'" >&2; exit 2 ;;
esac
