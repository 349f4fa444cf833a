#!/usr/bin/env bash
# Time a fresh `.venv` bootstrap from a clean clone (pip's wheel cache is kept: that is what a
# user's second project or CI's rerun sees; the first-ever compile of llama-cpp-python is
# reported separately in BENCHMARKS.md).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
d=$(mktemp -d)
git clone -q "$src" "$d/p"
cd "$d/p"
start=$(date +%s)
make .venv/.installed >/dev/null
end=$(date +%s)
echo "RESULT install_fresh_venv_s $((end - start))"
rm -rf "$d"
