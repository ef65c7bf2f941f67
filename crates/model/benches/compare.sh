#!/usr/bin/env bash
# The CPU engine next to PyTorch, one after the other on the same machine.
# PyTorch comes from a venv made as crates/model/tests/fixtures/make_fixtures.py says
# (PYTHON=/path/to/python to choose it).
set -euo pipefail
cd "$(dirname "$0")/../../.."
cargo bench --quiet -p glassbox-model --bench forward
"${PYTHON:-python3}" crates/model/benches/forward_torch.py
