#!/usr/bin/env bash
# Installs every Debian package Troupe needs to build, test and run.
# Idempotent: packages already present are skipped; works as root or via sudo.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache git pkg-config
  # libtorch (CPU) and a real BLAS: without libopenblas0-pthread Debian may pick the
  # reference BLAS and matmul runs ~20x slower.
  libtorch-dev libopenblas0-pthread libopenblas-dev
  # distributed
  libopenmpi-dev openmpi-bin libzmq3-dev cppzmq-dev libcereal-dev
  # core libraries
  libboost-dev libboost-program-options-dev libboost-filesystem-dev
  libhdf5-dev hdf5-tools libyaml-cpp-dev nlohmann-json3-dev libcli11-dev
  libspdlog-dev libfmt-dev libsimdjson-dev libsodium-dev libpcre2-dev
  # tests
  googletest libgtest-dev libgmock-dev
  # Python references for parity tests and reports (Debian's, not PyPI)
  python3 python3-torch python3-h5py python3-numpy python3-matplotlib
  # tokenizer benchmark peers and corpus (bench/tokenizer.sh)
  sentencepiece dict-gcide fortunes fortunes-min
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
  echo "install-deps: all ${#PACKAGES[@]} packages present"
else
  echo "install-deps: installing ${#missing[@]} missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Slurm/munge post-install scripts try to start services; that failure is harmless here.
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# Verify the BLAS that libtorch will actually get is OpenBLAS, not the reference BLAS.
blas=$(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null || true)
case "$blas" in
  *openblas*) echo "install-deps: BLAS in use: $blas" ;;
  *)
    echo "install-deps: BLAS alternative is '$blas', switching to OpenBLAS (pthread)"
    cand=$(update-alternatives --list libblas.so.3-x86_64-linux-gnu | grep openblas-pthread | head -n1 || true)
    if [ -z "$cand" ]; then echo "install-deps: no OpenBLAS libblas.so.3 found" >&2; exit 1; fi
    $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$cand"
    cand=$(update-alternatives --list liblapack.so.3-x86_64-linux-gnu | grep openblas-pthread | head -n1 || true)
    [ -n "$cand" ] && $SUDO update-alternatives --set liblapack.so.3-x86_64-linux-gnu "$cand"
    ;;
esac
