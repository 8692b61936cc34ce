#!/usr/bin/env bash
# The GPU machine's check (make gpu-check), run from the repo root with the .gpu/ bundle beside it:
# unpacks the bundle, points the binaries at this machine's torch, installs the bundled wheels into a temporary
# folder, then scripts/gpu_check.py runs every part under its time cap and prints one table (8 minutes at most).
#   INKWELL_DEVICE=cuda (default) | cpu   cpu: tiny models only, no SD1.5 rows (the CI test, in make test)
#   PYTHON   the reference side's python (default /opt/torch/.venv/bin/python, else .venv/bin/python, else python3)
#   OUT      if set, the table and the log are copied there too
#   GPU_CHECK_BUDGET  seconds for the whole check (default 480)
#   GPU_BUNDLE_DIR    the bundle (default .gpu; make gpu-check-cpu: .build/gpu-bundle-debug)
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

if [ -z "${PYTHON:-}" ]; then
  for PYTHON in /opt/torch/.venv/bin/python .venv/bin/python "$(command -v python3)"; do [ -x "$PYTHON" ] && break; done
fi
device=${INKWELL_DEVICE:-cuda}
work=$(mktemp -d "${TMPDIR:-/tmp}/inkwell-gpu-check.XXXXXX")
say() { printf '[gpu-check] %s\n' "$*"; }
die() { printf '[gpu-check] ERROR: %s\n' "$*" >&2; [ -n "${OUT:-}" ] && printf 'ERROR: %s\n' "$*" >> "$OUT/gpu-check.log"; exit 2; }
[ -n "${OUT:-}" ] && mkdir -p "$OUT"

bundle=${GPU_BUNDLE_DIR:-.gpu}
archive=$(ls "$bundle"/inkwell-gpu.tar.xz "$bundle"/inkwell-gpu.tar.gz 2>/dev/null | head -1)
[ -n "$archive" ] || die "no $bundle/inkwell-gpu.tar.{xz,gz}: run make gpu-bundle on the build machine and carry .gpu"
say "work folder $work; bundle $archive ($(head -1 "$bundle/MANIFEST" 2>/dev/null))"
# python's tarfile: xz and gzip without relying on the machine's tools.
"$PYTHON" - "$archive" "$work" <<'EOF' || die "could not unpack $archive"
import sys, tarfile
with tarfile.open(sys.argv[1]) as tar:
    tar.extractall(sys.argv[2], **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
EOF

torch_lib=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') ||
  die "$PYTHON cannot import torch"
say "python $PYTHON; torch lib $torch_lib"

# The reference side's missing packages, installed into the work folder only.
if ls "$bundle"/wheels/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
    --target "$work/site" "$bundle"/wheels/*.whl || die "installing $bundle/wheels failed"
fi

# LD_LIBRARY_PATH only for Inkwell's processes (gpu_check.py sets it for them): the bundled zlib and codecs must
# not shadow the python side's own.
INK_LD_LIBRARY_PATH="$torch_lib:$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing=$(LD_LIBRARY_PATH=$INK_LD_LIBRARY_PATH ldd "$work/bin/inkwell" "$work/bin/inkwell-bench" | grep 'not found' | sort -u)
[ -z "$missing" ] || die "libraries the binaries need are neither bundled nor here: $(echo $missing)"
budget=${GPU_CHECK_BUDGET:-480}
elapsed=$(( $(date +%s) - start ))
PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 \
  "$PYTHON" scripts/gpu_check.py --device "$device" --work "$work" --bin "$work/bin" \
    --ld-library-path "$INK_LD_LIBRARY_PATH" --budget $(( budget - elapsed )) ${OUT:+--out "$OUT"}
status=$?
if [ "${GPU_CHECK_KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
exit $status
