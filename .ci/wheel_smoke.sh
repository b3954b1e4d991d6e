#!/usr/bin/env bash
# The built wheel, installed (not editable) into a fresh environment, run from a folder outside the checkout:
# `--help` of every command, the demo recipe and `bench control` (a few steps, on the packaged sample images),
# `score` and `restore` (the packaged demo model). A file found only through the checkout fails here.
#
# The fresh environment is `python -m venv --without-pip` plus one .pth line naming .venv's site-packages:
# torch, basicsr... are reused from .venv (no download, no second install of torch), while `iqprior` and
# `adapters` come from the wheel, first on sys.path (a .pth line adds a directory, it does not run the .pth
# files inside it, so .venv's editable-install hook stays off). The wheel goes in with .venv's pip
# (`pip --python`), --no-deps --no-index: nothing is fetched. About a minute or two on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$PWD/${VENV:-.venv}/bin/python"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1

"$PY" -m pip wheel --no-deps --no-build-isolation --quiet -w "$WORK/dist" .
WHEEL=$(ls "$WORK"/dist/iqprior-*.whl)
"$("$PY" -c 'import sys; print(sys._base_executable)')" -m venv --without-pip "$WORK/venv"
V="$WORK/venv/bin"
"$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
    > "$("$V/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/iqprior_ci_deps.pth"
"$PY" -m pip --python "$V/python" install --no-deps --no-index --quiet "$WHEEL"
echo "wheel: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"

mkdir "$WORK/run" && cd "$WORK/run"     # outside the checkout: nothing there is importable or readable
"$V/python" - "$WORK/venv" <<'PY'
import sys
from pathlib import Path

import adapters
import iqprior
from iqprior import sample_images
from iqprior.demo.service import BUNDLED_CHECKPOINT

venv = Path(sys.argv[1]).resolve()
for mod in (iqprior, adapters):
    assert venv in Path(mod.__file__).resolve().parents, f"{mod.__name__} comes from {mod.__file__}, not the wheel"
assert len(list(sample_images.root().rglob("*.png"))) >= 4, "the sample images are not in the wheel"
assert (BUNDLED_CHECKPOINT / "model.safetensors").is_file(), "the demo model is not in the wheel"
print("imports from", Path(iqprior.__file__).parent)
PY
SAMPLES=$("$V/python" -c 'from iqprior import sample_images; print(sample_images.root())')
DEMO_MODEL=$("$V/python" -c 'from iqprior.demo.service import BUNDLED_CHECKPOINT; print(BUNDLED_CHECKPOINT)')

"$V/iqprior" --help > /dev/null
"$V/iqprior" demo --help > /dev/null
"$V/python" -m iqprior.demo.recipe --steps 5 --pool 64 --out recipe > /dev/null
test -s recipe/model.safetensors
"$V/iqprior" bench control --source photos --steps 5 --pool 64 --eval-draws 1 --threads 1 --no-progress \
    --out control > /dev/null
test -s control/control.json
"$V/iqprior" score "$SAMPLES" --members offline --out scores.jsonl --no-progress > /dev/null
test "$(wc -l < scores.jsonl)" -ge 8
"$V/iqprior" restore "$SAMPLES/underwater/625_img_.png" --model minires+ --checkpoint "$DEMO_MODEL" --score 7 \
    --out restored --no-progress > /dev/null
test -n "$(ls restored)"
echo "wheel smoke: ok"
