#!/usr/bin/env bash
# The local Prefect server, kept up in the background (`sessionflow prefect start`): state,
# pid file, URL file and log under <data_dir>/prefect-server/. `run`, `backfill`, `demo`
# and `serve` find it there (no PREFECT_API_URL needed); stop it with
# `sessionflow prefect stop`.
#   infra/prefect/server.sh                 # http://127.0.0.1:4200 (UI), .../api (API)
#   infra/prefect/server.sh --port 4300
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/sessionflow prefect start "$@"
