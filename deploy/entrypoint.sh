#!/usr/bin/env bash
# The image's one entrypoint: the first argument picks the role (controller, engine, lab,
# healthcheck, connection); anything else is executed as given.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${MAO_PYTHON:-python}"
conn_dir="${MAO_CONNECTION_DIR:-/etc/mao/connection}"
profile_dir="${MAO_PROFILE_DIR:-${HOME:-/tmp}/.ipython/profile_mao}"

usage() {
  cat >&2 <<EOF
usage: entrypoint.sh controller --ip=ADDR --location=NAME --ports=A-B [ipcontroller args]
       entrypoint.sh engine [ipengine args]       (needs IPP_CONNECTION_INFO)
       entrypoint.sh lab [jupyter lab args]        (JUPYTER_TOKEN sets the token)
       entrypoint.sh healthcheck controller|engine|lab
       entrypoint.sh connection secret|dir|check ...
       entrypoint.sh COMMAND [ARGS]                (run anything else)
EOF
}

role="${1:-}"
[ -n "$role" ] || { usage; exit 2; }
shift

case "$role" in
  controller)
    # The Secret's key is the controller's HMAC key; its JSON files are what engines and
    # clients were given, so refuse to start on settings they do not describe.
    "$py" "$here/connection.py" check "$conn_dir" -- "$@"
    mkdir -p "$profile_dir"
    exec ipcontroller "$@" --Session.keyfile="$conn_dir/key" --profile-dir="$profile_dir"
    ;;
  engine)
    if [ -z "${IPP_CONNECTION_INFO:-}" ]; then
      echo "entrypoint.sh engine: IPP_CONNECTION_INFO is empty; expected the controller's" \
        "engine connection JSON (the Secret's ipcontroller-engine.json)" >&2
      exit 2
    fi
    mkdir -p "$profile_dir"
    exec ipengine --profile-dir="$profile_dir" "$@"
    ;;
  lab)
    exec jupyter lab --ip="${MAO_LAB_IP:-0.0.0.0}" --port="${MAO_LAB_PORT:-8888}" \
      --no-browser "$@"
    ;;
  healthcheck)
    exec "$py" "$here/healthcheck.py" "$@"
    ;;
  connection)
    exec "$py" "$here/connection.py" "$@"
    ;;
  -h|--help|help)
    usage
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
