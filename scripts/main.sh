#!/usr/bin/env bash
# The main job: sets up what is missing, builds, and runs the demo trainer.
# Extra arguments go to the program (e.g. --n 128 --steps 1000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec "$MANTRA_BUILD/examples/orthogonal_demo" "$@"
