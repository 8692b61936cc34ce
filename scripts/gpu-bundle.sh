#!/usr/bin/env bash
# Packs what the GPU test machine lacks into .gpu/ (git-ignored), for scripts/gpu-check.sh to run there.
#   scripts/gpu-bundle.sh           the release binaries (make gpu-bundle builds them first), xz: must fit 64 MiB
#   scripts/gpu-bundle.sh --debug   the debug binaries `swift build --build-tests` made, gzip -1, into
#                                   .build/gpu-bundle-debug/ (the CPU test of the check in make test: quick to pack,
#                                   no size limit, and it leaves a release .gpu/ alone)
# .gpu/inkwell-gpu.tar.{xz,gz}  bin/ (stripped inkwell, inkwell-bench, and Inkwell_Dashboard.resources: the
#                               dashboard's page files, found beside inkwell) and lib/ (the Swift runtime and
#                               the image codecs they load, found with ldd; never libtorch, c10 or CUDA: the
#                               binaries run against the machine's own torch 2.11.0)
# .gpu/wheels/                  the reference side's wheels the machine lacks (diffusers; open-clip-torch, whose
#                               bundled BPE vocabulary the tokenizer fixture reads; importlib_metadata)
# .gpu/MANIFEST                 what was packed, from which commit, and the sizes
set -euo pipefail
cd "$(dirname "$0")/.."

LIMIT=$((64 * 1024 * 1024))
config=release
[ "${1:-}" = "--debug" ] && config=debug
bindir=${GPU_BUNDLE_BINDIR:-.build/$config}   # the override: binaries built elsewhere
out=.gpu
[ $config = debug ] && out=.build/gpu-bundle-debug
out=${GPU_BUNDLE_DIR:-$out}
say() { printf '[gpu-bundle] %s\n' "$*"; }
die() { printf '[gpu-bundle] ERROR: %s\n' "$*" >&2; exit 1; }

# Wheels pinned to reference/requirements.txt (diffusers) and the versions the venv holds (the others).
# Pure-python, so the CPU's python (3.11 here) can fetch them for the machine's 3.12.
PY=${PYTHON:-.venv/bin/python}
pin() { "$PY" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
DIFFUSERS=$(sed -n 's/^diffusers==//p' reference/requirements.txt)
OPEN_CLIP=$(sed -n 's/^OPEN_CLIP_VERSION=\([^ ]*\).*/\1/p' scripts/bootstrap.sh)
IMPORTLIB_METADATA=$(pin importlib_metadata); IMPORTLIB_METADATA=${IMPORTLIB_METADATA:-8.7.0}
WHEELS=("diffusers==$DIFFUSERS" "open-clip-torch==$OPEN_CLIP" "importlib_metadata==$IMPORTLIB_METADATA")

for bin in inkwell inkwell-bench; do
  [ -x "$bindir/$bin" ] || die "$bindir/$bin is missing: build it first (make gpu-bundle does)"
done
[ -d "$bindir/Inkwell_Dashboard.resources" ] || die "$bindir/Inkwell_Dashboard.resources is missing: the build makes it with inkwell"

stage=$(mktemp -d "${TMPDIR:-/tmp}/inkwell-gpu-bundle.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bundle/bin" "$stage/bundle/lib" "$out/wheels"
[ "$out" = .gpu ] || cp -n .gpu/wheels/*.whl "$out/wheels/" 2>/dev/null || true  # a release bundle's downloads

# 1. Stripped binaries.
for bin in inkwell inkwell-bench; do
  strip -o "$stage/bundle/bin/$bin" "$bindir/$bin"
done
# Bundle.module looks beside the binary; without them `inkwell dashboard` stops at start.
cp -R "$bindir/Inkwell_Dashboard.resources" "$stage/bundle/bin/"

# 2. The libraries they load, by ldd: the Swift runtime (the toolchain's folder) and the image codecs. Not zlib
# (every Linux has libz.so.1, newer than this one). Never torch/c10/CUDA/NVIDIA (the machine's own), nor glibc, libstdc++ or libgcc_s (the machine's
# are newer; a copy from here would shadow them).
ldd "$stage/bundle/bin/inkwell" "$stage/bundle/bin/inkwell-bench" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
  sort -u | while read -r name path; do
    case "$name" in
      libtorch*|libc10*|libcaffe2*|libgomp*|libcu*|libnv*|libcud*|libnccl*) continue ;;
      libz.so*|libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|libutil.so*|ld-linux*|libstdc++*|libgcc_s*) continue ;;
    esac
    case "$path" in
      */swift/*|*/libpng*|*/libjpeg*|*/libwebp*|*/libsharpyuv*) cp -L "$path" "$stage/bundle/lib/$name" ;;
      *) say "not bundled (expected on the machine): $name => $path" ;;
    esac
  done
strip --strip-unneeded "$stage/bundle/lib/"*.so* 2>/dev/null || true
for lib in libswiftCore.so libFoundation.so libpng16.so.16 libjpeg.so.62 libwebp.so.7; do
  [ -f "$stage/bundle/lib/$lib" ] || die "ldd did not find $lib for the binaries"
done
if ldd "$bindir/inkwell" | grep -q 'libtorch_cuda'; then cuda=yes; else cuda="NO (built against a CPU-only libtorch: CUDA will not register there)"; fi

# 3. The archive.
rm -f "$out"/inkwell-gpu.tar.*
if [ "$config" = release ]; then
  archive=$out/inkwell-gpu.tar.xz
  tar -C "$stage/bundle" -cf - bin lib | xz -T0 -9e > "$archive"
else
  archive=$out/inkwell-gpu.tar.gz
  tar -C "$stage/bundle" -cf - bin lib | gzip -1 > "$archive"
fi

# 4. Wheels: downloaded once, reused while the pins hold.
want=()
for spec in "${WHEELS[@]}"; do
  name=${spec%%==*}; version=${spec##*==}
  file=$(ls "$out/wheels/" 2>/dev/null | grep -i "^$(echo "$name" | tr - _)-$version-" || true)
  [ -n "$file" ] || want+=("$spec")
done
if [ ${#want[@]} -gt 0 ]; then
  say "downloading ${want[*]}"
  "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_17_x86_64 -d "$out/wheels" "${want[@]}" ||
    die "pip download failed (needs the network, here, once)"
fi
for f in "$out"/wheels/*.whl; do  # one version of each: two stop the install there
  keep=0
  for spec in "${WHEELS[@]}"; do
    case "$(basename "$f" | tr '[:upper:]' '[:lower:]')" in
      "$(echo "${spec%%==*}" | tr - _ | tr '[:upper:]' '[:lower:]')-${spec##*==}-"*) keep=1 ;;
    esac
  done
  [ $keep = 1 ] || { say "removing stale $f"; rm -f "$f"; }
done

# 5. Manifest and the size limit.
{
  echo "inkwell GPU bundle ($config binaries), made $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources Package.swift || echo ' + uncommitted changes')"
  echo "links libtorch_cuda: $cuda"
  (cd "$stage/bundle" && find bin lib -type f -printf '%s %p\n' | sort -k2)
  (cd "$out" && find wheels -type f -printf '%s %p\n' | sort -k2)
} > "$out/MANIFEST"
total=$(find "$out" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
tree=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "total $total bytes" >> "$out/MANIFEST"
say "$archive: $(mib "$(stat -c %s "$archive")") ($(mib "$(du -sb "$stage/bundle" | cut -f1)") unpacked); wheels $(mib "$(du -sb "$out/wheels" | cut -f1)")"
say "bundle $(mib "$total") + tracked tree $(mib "$tree") = $(mib $((total + tree))) of the 64 MiB that travels"
[ "$cuda" = yes ] || say "WARNING: inkwell links no libtorch_cuda: $cuda"
if [ "$config" = release ]; then
  [ "$total" -le "$LIMIT" ] || die "the bundle is $(mib "$total"), over the 64 MiB the GPU machine receives"
  [ $((total + tree)) -le "$LIMIT" ] || die "the bundle plus the tracked tree is $(mib $((total + tree))), over 64 MiB"
fi
[ "$out" = .gpu ] && say "done: carry .gpu to the GPU machine and run scripts/gpu-check.sh (make gpu-check) there"
exit 0
