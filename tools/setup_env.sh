#!/usr/bin/env bash
# Idempotent set-up of the OpenMMLab 2.0 stack for mvig2_mm in a project-local
# virtual environment. Called by `make setup` (and so by `make test`/`make demo`).
#
#   VENV      where the environment lives           (default: .venv)
#   PYTHON    interpreter that creates it           (default: python3)
#   MVIG2_MM_CACHE  wheel cache for the mmcv build  (default: ~/.cache/mvig2_mm)
#
# What it does, each step skipped when already satisfied:
#   1. create the venv;
#   2. torch 2.13.0 + torchvision 0.28.0 from the registry (unless a working
#      torch/torchvision of a supported version is already there: kept);
#   3. build tools: setuptools<82 (mmengine needs pkg_resources), wheel, ninja;
#   4. mmcv 2.1.0 compiled from the sdist with its ops, once, into the cache,
#      in the background;
#   5. meanwhile mmengine/mmdet/mmseg/mmpretrain and the extras, with
#      torch/torchvision/mmcv pinned so nothing replaces them;
#   6. the mmcv wheel installed;
#   7. this package (editable), linked where mim looks for it;
#   8. mmdeploy without its stale dependency pins (--no-deps; what it
#      imports comes with the mmdeploy extra);
#   9. verify the stack, mmcv's compiled ops included.
set -euo pipefail

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
CACHE=${MVIG2_MM_CACHE:-$HOME/.cache/mvig2_mm}
TORCH_SPEC=${TORCH_SPEC:-torch===2.13.0}
TORCHVISION_SPEC=${TORCHVISION_SPEC:-torchvision==0.28.0}
MMCV_VERSION=2.1.0

start=$(date +%s)
say() { printf '[setup %4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# 1. virtual environment ---------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv "$VENV" || die "could not create a venv with $PYTHON (install python3-venv?)"
  "$VENV/bin/python" -m pip install -q --upgrade "pip>=24" \
    2> >(grep -v 'is ignored: it is neither' >&2) || die "could not upgrade pip in $VENV"
else
  say "virtual environment $VENV exists"
fi
PY="$VENV/bin/python"
# pip, minus the warnings about unreadable extra index locations that some
# machines' pip configuration produces for every package
pip_() {
  "$PY" -m pip --disable-pip-version-check "$@" \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}
PIP=(pip_)

# 2. torch / torchvision ----------------------------------------------------
# Supported: torch >= 2.1 (mmcv 2.1.0 compiles against it). A working pair is kept.
# torch_ok prints "TORCH_VERSION TORCHVISION_VERSION PYTAG" for a working pair
# (one interpreter start, the slow part of a set-up that has nothing to do).
torch_ok() {
  "$PY" - <<'PY' 2>/dev/null
import sys
import torch, torchvision  # torchvision must import with this torch (mmpretrain needs it)
from packaging.version import Version
v = Version(torch.__version__.split('+')[0])
assert Version('2.1') <= v < Version('2.14'), v
print(torch.__version__, torchvision.__version__,
      f'cp{sys.version_info[0]}{sys.version_info[1]}')
PY
}
if versions=$(torch_ok); then
  read -r TORCH_VERSION TV_VERSION PYTAG <<< "$versions"
  say "keeping torch $TORCH_VERSION / torchvision $TV_VERSION"
else
  say "installing $TORCH_SPEC and $TORCHVISION_SPEC from the registry (several GB, ~2 min)"
  # '===' excludes the local '+cpu' build found on disk, whose torchvision does not import.
  "${PIP[@]}" install -q "$TORCH_SPEC" "$TORCHVISION_SPEC" packaging \
    || die "installing torch/torchvision failed"
  versions=$(torch_ok) || die "torch/torchvision installed but do not import together"
  read -r TORCH_VERSION TV_VERSION PYTAG <<< "$versions"
fi

# Pins for every later install: nothing may replace torch, torchvision or mmcv.
CONSTRAINTS="$VENV/mvig2_mm-constraints.txt"
cat > "$CONSTRAINTS" <<CON
torch==$TORCH_VERSION
torchvision==$TV_VERSION
setuptools<82
CON
export PIP_CONSTRAINT="$CONSTRAINTS"

# 3. build tools -------------------------------------------------------------
if ! "$PY" -c 'import pkg_resources, wheel, ninja' 2>/dev/null; then
  say "installing build tools (setuptools<82, wheel, ninja)"
  "${PIP[@]}" install -q "setuptools>=64,<82" wheel ninja || die "installing build tools failed"
fi

# 4. mmcv with compiled ops: compiled in the background --------------------------
# The one long step (minutes on 2 cores). It builds while step 5 installs the
# rest; without debug information (-g0: Python's CFLAGS carry -g), which cuts
# the compile time and the size of the library, and on every core.
mmcv_ops_ok() {
  "$PY" -c "
import mmcv
assert mmcv.__version__ == '$MMCV_VERSION', mmcv.__version__
from mmcv.ops import nms, RoIAlign, batched_nms
" 2>/dev/null
}
WHEEL_DIR="$CACHE/wheels/torch-${TORCH_VERSION}-${PYTAG}"
cached_wheel() { ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true; }
build_pid=""
build_log=""
mmcv_ready=false
if mmcv_ops_ok; then
  mmcv_ready=true
  say "mmcv $MMCV_VERSION with compiled ops already installed"
elif [ -z "$(cached_wheel)" ]; then
  say "building mmcv $MMCV_VERSION with ops from source into $WHEEL_DIR, in the background (once; ~5 min on 2 cores)"
  mkdir -p "$WHEEL_DIR"
  build_tmp=$(mktemp -d)
  build_log="$build_tmp/build.log"
  # MMCV_WITH_OPS=1 is explicit: pip can otherwise build it without ops, silently.
  ( MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} FORCE_CUDA=0 CFLAGS="${CFLAGS:-} -g0" \
      "${PIP[@]}" wheel --no-build-isolation --no-deps --no-binary mmcv \
      "mmcv==$MMCV_VERSION" -w "$build_tmp" > "$build_log" 2>&1 \
    && mv "$build_tmp"/mmcv-*.whl "$WHEEL_DIR"/ ) &
  build_pid=$!
fi

# 5. what mvig2_mm needs besides mmcv, while mmcv builds ---------------------------
# Re-run pip only when setup.py or the extras changed since the last install.
STAMP="$VENV/.mvig2_mm-installed"
EXTRAS="tests,deploy,mmdeploy,lint,mim"
CONSTRAINT_LINES="mmcv==$MMCV_VERSION
mmengine==0.10.7
mmdet==3.3.0
mmsegmentation==1.2.2
mmpretrain==1.2.0"
want=$( (cat setup.py "$CONSTRAINTS"; echo "$CONSTRAINT_LINES"; echo "$EXTRAS") | "$PY" -c 'import hashlib,sys; print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest())')
# the tested OpenMMLab stack (setup.py declares ranges; these are the pins)
echo "$CONSTRAINT_LINES" >> "$CONSTRAINTS"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
  say "installing mmengine, mmdet, mmseg, mmpretrain and the extras ($EXTRAS)"
  meta=$(mktemp -d)
  "$PY" setup.py -q egg_info --egg-base "$meta" > /dev/null \
    || die "reading the requirements of setup.py failed"
  # setup.py's requirements (and those of the extras) as egg_info writes them,
  # minus mmcv: pip would build that one again, maybe without its ops
  mapfile -t requirements < <("$PY" - "$meta/mvig2_mm.egg-info/requires.txt" "$EXTRAS" <<'PY'
import sys
path, extras = sys.argv[1], sys.argv[2].split(',')
section = None
for line in open(path):
    line = line.strip()
    if line.startswith('['):
        section = line[1:-1]
    elif line and section in (None, *extras) and not line.startswith('mmcv'):
        print(line)
PY
)
  "${PIP[@]}" install -q "${requirements[@]}" || die "installing the requirements failed"
fi

# 6. mmcv: the wheel built above (or cached), installed -----------------------------
if ! $mmcv_ready; then
  if [ -n "$build_pid" ]; then
    say "waiting for the mmcv build to finish"
    wait "$build_pid" \
      || { tail -n 40 "$build_log" >&2; die "mmcv build failed (full log: $build_log)"; }
    say "built $(basename "$(cached_wheel)")"
  else
    say "reusing cached $(basename "$(cached_wheel)")"
  fi
  "${PIP[@]}" install -q --force-reinstall --no-deps "$(cached_wheel)" \
    || die "installing $(cached_wheel) failed"
  # mmcv's own runtime requirements (not pulled by --no-deps)
  "${PIP[@]}" install -q addict "mmengine==0.10.7" "numpy>=1.23" packaging Pillow pyyaml yapf \
    "opencv-python>=4.10" || die "installing mmcv's requirements failed"
  mmcv_ops_ok || die "mmcv $MMCV_VERSION is installed WITHOUT its compiled ops \
(from mmcv.ops import nms, RoIAlign, batched_nms fails). Delete $WHEEL_DIR and run again."
fi

# 7. this package, editable --------------------------------------------------------
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
  say "installing mvig2_mm (editable)"
  "${PIP[@]}" install -q --no-build-isolation -e ".[$EXTRAS]" || die "installing mvig2_mm failed"
  echo "$want" > "$STAMP"
else
  say "mvig2_mm and its requirements already installed"
fi
# mim looks for an installed package at <site-packages>/mvig2_mm (its
# get_installed_path), which an editable install (PEP 660) does not create:
# link it to the checkout's package, and list the link in the install's
# RECORD so that pip removes the link (never the checkout) when it
# uninstalls or replaces mvig2_mm.
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ -L "$SITE/mvig2_mm" ] || [ ! -e "$SITE/mvig2_mm" ]; then
  ln -sfn "$PWD/mvig2_mm" "$SITE/mvig2_mm"
  record="$(ls -d "$SITE"/mvig2_mm-*.dist-info | head -n1)/RECORD"
  grep -qx 'mvig2_mm,,' "$record" || echo 'mvig2_mm,,' >> "$record"
fi

# 8. mmdeploy ---------------------------------------------------------------------
# Its metadata pins protobuf<=3.20.2 (and so onnx 1.17): installed without
# its dependencies; what it imports is setup.py's mmdeploy extra (step 5).
MMDEPLOY_VERSION=1.3.1
if ! "$PY" -c "import importlib.metadata as m; assert m.version('mmdeploy') == '$MMDEPLOY_VERSION'" 2>/dev/null; then
  say "installing mmdeploy $MMDEPLOY_VERSION (--no-deps)"
  "${PIP[@]}" install -q --no-deps "mmdeploy==$MMDEPLOY_VERSION" \
    || die "installing mmdeploy $MMDEPLOY_VERSION failed"
fi

# 9. verify ---------------------------------------------------------------------
"$PY" - <<'PY' || die "the installed stack does not import; see the error above"
import mmcv, mmdet, mmengine, mmpretrain, mmseg, torch, torchvision  # noqa
from mmcv.ops import RoIAlign, batched_nms, nms  # noqa
import mvig2_mm  # noqa
from mmdeploy.apis.utils import build_task_processor  # noqa
from mim.utils import get_installed_path  # noqa
import os.path as osp
assert osp.isfile(osp.join(get_installed_path('mvig2_mm'), '.mim', 'model-index.yml')), \
    'mim does not find mvig2_mm/.mim/model-index.yml'
PY
say "done: torch $TORCH_VERSION, torchvision $TV_VERSION, mmcv $MMCV_VERSION (ops compiled)"
