#!/usr/bin/env bash
# Installs everything Troupe needs to build, test and run: Debian's packages for the system libraries, and a
# project virtual environment (.venv/) with the pinned torch wheel (which carries libtorch: headers, shared
# libraries, CMake package) and the Python reference packages of scripts/requirements.txt.
# Idempotent: what is already present is skipped; works as root or via sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache git pkg-config clang-format clang-14 libclang-rt-14-dev
  # distributed
  libopenmpi-dev openmpi-bin libzmq3-dev cppzmq-dev libcereal-dev
  # core libraries
  libboost-dev libboost-program-options-dev libboost-filesystem-dev
  libhdf5-dev hdf5-tools libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libspdlog-dev libfmt-dev libsimdjson-dev libsodium-dev libpcre2-dev libicu-dev
  # dataprep's MinHash: datasketch's SHA-1 shingle hash
  libssl-dev
  # tests
  googletest libgtest-dev libgmock-dev
  # the Python that hosts .venv (torch.compile's CPU backend compiles C++ against Python.h)
  python3 python3-venv python3-dev
  # tokenizer benchmark peer (spm_encode) and corpora (bench/tokenizer.sh, the quickstart)
  sentencepiece dict-gcide fortunes fortunes-min
  # METEOR's synonyms (metrics/meteor.cpp) and NLTK's reference reader in its test: WordNet 3.0
  wordnet-base
  # the dashboard: its plotting library (served by troupe, no CDN) and the headless browser of its tests;
  # tmux drives `troupe label` in its terminal tests
  libjs-chart.js chromium chromium-driver tmux
  # Slurm tests
  slurm-wlm slurmctld slurmd slurm-client munge libpmix2
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: need root or sudo to install packages" >&2; exit 1; fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} Debian packages present"
else
  echo "install-deps: installing ${#missing[@]} missing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Slurm/munge post-install scripts try to start services; that failure is harmless here.
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# The virtual environment: Debian's python3 (not a pyenv shim first on PATH), packages pinned in
# scripts/requirements.txt. A stamp holding the requirements' checksum skips pip when nothing changed.
VENV=${TROUPE_VENV:-.venv}
REQ=scripts/requirements.txt
want=$(sha256sum "$REQ" | cut -d' ' -f1)
have=$(cat "$VENV/.troupe-requirements" 2>/dev/null || true)
if [ "$want" = "$have" ] && [ -x "$VENV/bin/python" ]; then
  echo "install-deps: $VENV up to date ($REQ)"
else
  echo "install-deps: installing $REQ into $VENV (torch with libtorch, reference packages; a few GB)"
  [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
  # llama-cpp-python builds from its sdist: on every core, without its multimodal library (mtmd, imported lazily and
  # not used here), which is about a third of its sources.
  CMAKE_ARGS="${CMAKE_ARGS:-} -DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  echo "$want" > "$VENV/.troupe-requirements"
fi
"$VENV/bin/python" -c "import torch; print('install-deps: torch', torch.__version__, '(CUDA', torch.version.cuda, ')')"
