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
