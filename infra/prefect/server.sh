#!/usr/bin/env bash
# A local Prefect server for `sessionflow serve` (and to watch flow runs in its UI).
#   infra/prefect/server.sh            # http://127.0.0.1:4200
#   export PREFECT_API_URL=http://127.0.0.1:4200/api
#   .venv/bin/sessionflow serve
set -euo pipefail
cd "$(dirname "$0")/../.."
export PREFECT_HOME="${PREFECT_HOME:-$PWD/data/prefect}"
exec .venv/bin/prefect server start --host "${PREFECT_HOST:-127.0.0.1}" --port "${PREFECT_PORT:-4200}"
