#!/usr/bin/env bash
# Installs what is missing and builds mantra. Sourced by scripts/main.sh and scripts/test.sh;
# safe to run again: packages already there are not fetched again, the build is incremental.
#   MANTRA_VENV   Python environment (default ~/.local/share/mantra/venv), kept across clones
#   MANTRA_BUILD  build folder (default <checkout>/build)
#   MANTRA_CUDA   AUTO | ON | OFF (default AUTO: CUDA kernels when nvcc and torch's CUDA agree)
set -euo pipefail

MANTRA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MANTRA_VENV="${MANTRA_VENV:-$HOME/.local/share/mantra/venv}"
MANTRA_BUILD="${MANTRA_BUILD:-$MANTRA_ROOT/build}"
export MANTRA_ROOT MANTRA_VENV MANTRA_BUILD

log() { printf '[mantra setup] %s\n' "$*" >&2; }

# 1. Debian packages: compilers, CMake, Ninja, GoogleTest, ccache; espeak-ng (synthetic speech
#    corpus of examples/rnn) and zlib (gzip data files).
apt_packages=(g++ cmake ninja-build libgtest-dev ccache python3-venv espeak-ng zlib1g-dev)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Python environment outside the checkout, so a fresh clone does not download torch again.
if [ ! -x "$MANTRA_VENV/bin/python" ]; then
  log "creating Python environment $MANTRA_VENV"
  mkdir -p "$(dirname "$MANTRA_VENV")"
  python3 -m venv "$MANTRA_VENV"
fi
req_hash="$(sha256sum "$MANTRA_ROOT/requirements.txt" | cut -d' ' -f1)"
stamp="$MANTRA_VENV/.mantra-requirements"
if [ "$(cat "$stamp" 2>/dev/null)" != "$req_hash" ]; then
  log "installing Python packages (requirements.txt) into $MANTRA_VENV"
  "$MANTRA_VENV/bin/python" -m pip install -q --upgrade pip
  "$MANTRA_VENV/bin/python" -m pip install -q -r "$MANTRA_ROOT/requirements.txt"
  echo "$req_hash" > "$stamp"
fi
PY="$MANTRA_VENV/bin/python"

# 3. Build (CMake + Ninja; ccache when present).
if [ ! -f "$MANTRA_BUILD/CMakeCache.txt" ]; then
  log "configuring $MANTRA_BUILD"
  cmake -S "$MANTRA_ROOT" -B "$MANTRA_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DPython_EXECUTABLE="$PY" -DMANTRA_CUDA="${MANTRA_CUDA:-AUTO}" >/dev/null
fi
log "building (log: $MANTRA_BUILD/build.log)"
if ! cmake --build "$MANTRA_BUILD" >"$MANTRA_BUILD/build.log" 2>&1; then
  tail -n 40 "$MANTRA_BUILD/build.log" >&2
  log "build failed"
  exit 1
fi

# 4. `import mantra` in this environment finds this checkout's python/ folder.
site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$MANTRA_ROOT/python" > "$site/mantra-checkout.pth"
export PATH="$MANTRA_VENV/bin:$PATH"
