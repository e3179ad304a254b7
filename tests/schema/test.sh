#!/usr/bin/env bash
# Validates the server's OpenAPI and AsyncAPI documents (docs/schema.md) with npm validators
# against a running cars example. LIVEBASE_BIN: the cars binary (absolute, or relative to the
# repository root); default build/test/examples/cars/cars. Needs node >= 20 and the npm registry.
set -euo pipefail
cd "$(dirname "$0")"
export LIVEBASE_BIN="${LIVEBASE_BIN:-build/test/examples/cars/cars}"
npm ci --no-audit --no-fund
node --test --test-timeout=180000 --test-force-exit
