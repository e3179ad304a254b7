#!/usr/bin/env bash
# Installs the locked dev dependencies, builds the client and runs its tests against a real
# `cars` server. LIVEBASE_BIN names the server binary (default: ../../build/test/examples/cars/cars).
set -euo pipefail
cd "$(dirname "$0")"
if [[ -n "${LIVEBASE_BIN:-}" ]]; then export LIVEBASE_BIN; fi
npm ci --no-audit --no-fund
npm test
