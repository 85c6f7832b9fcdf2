# cllstr — one-command set-up on a fresh machine:
#   make demo   synthesise a small multilingual dataset, train svtr_tiny on 7 scripts, evaluate, print the table
#   make test   build (C++ always, CUDA when available) + pytest + ctest
# Both are idempotent: the venv, the build and the demo data are made once and reused while up to date.

PYTHON_BASE ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.14.1
CUDA_HOME ?= $(if $(wildcard /usr/local/cuda/bin/nvcc),/usr/local/cuda,)
TORCH_CUDA_ARCH_LIST ?= 8.0;9.0
MAX_JOBS ?= 2
export CUDA_HOME TORCH_CUDA_ARCH_LIST MAX_JOBS

NATIVE_SOURCES := $(shell find csrc/ops csrc/dali csrc/cllstr.cpp -name '*.cpp' -o -name '*.cc' -o -name '*.cu' -o -name '*.h' 2>/dev/null)
DEMO_DIR ?= demo
DEMO_SCALE ?= 0.02
DEMO_ITERS ?= 300

.PHONY: help fonts venv build test pytest ctest coverage demo bench lint clean

help:
	@echo "make demo | make test | make build | make bench | make lint | make clean"

# The synthetic engine renders with Debian's Noto fonts (and Pillow's raqm needs libfribidi/libraqm).
fonts:
	@if fc-list 2>/dev/null | grep -q "Noto Sans CJK" && fc-list 2>/dev/null | grep -q "NotoSansBengali"; then \
		echo "Noto fonts found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-noto-core fonts-noto-cjk \
			fontconfig libraqm0 cmake > /dev/null; \
	else \
		echo "install the Debian packages fonts-noto-core fonts-noto-cjk (as root: make fonts)"; exit 1; \
	fi

$(VENV)/.deps: pyproject.toml
	test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel "setuptools>=69"
	$(PIP) install -q torch==$(TORCH_VERSION)
	$(PY) -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; extra = p['optional-dependencies']; print(chr(10).join(p['dependencies'] + extra['test'] + extra['dali']))" > $(VENV)/requirements.txt
	$(PIP) install -q ninja pybind11 -r $(VENV)/requirements.txt
	touch $@

venv: $(VENV)/.deps

$(VENV)/.built: $(VENV)/.deps setup.py pyproject.toml $(NATIVE_SOURCES)
	$(PIP) install -q --no-build-isolation --no-deps -e .
	$(PY) -c "import cllstr.ops as o; assert o.HAS_NATIVE, o.NATIVE_ERROR; print('native ops loaded; cuda kernels:', o.has_kernel('ctc_greedy_decode', 'cuda'))"
	$(PY) -c "from cllstr.data.dali import plugin_status; print('DALI plugin:', plugin_status())"
	touch $@

build: $(VENV)/.built

pytest: build
	$(PY) -m pytest -q tests

cmake-build/CMakeCache.txt: $(VENV)/.deps CMakeLists.txt
	cmake -S . -B cmake-build -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')" \
		$(if $(CUDA_HOME),-DCUDA_TOOLKIT_ROOT_DIR=$(CUDA_HOME),) > cmake-build.log 2>&1 || (cat cmake-build.log; exit 1)

ctest: cmake-build/CMakeCache.txt
	cmake --build cmake-build -j $(MAX_JOBS)
	ctest --test-dir cmake-build --output-on-failure

test: build
	$(MAKE) --no-print-directory ctest
	$(PY) -m pytest -q --require-native tests

# Line and branch coverage of the cllstr package over the whole suite (no gate); the HTML report in htmlcov/.
coverage: build
	$(PY) -m pytest -q --require-native --cov=cllstr --cov-branch --cov-report=term-missing:skip-covered \
		--cov-report=html tests

demo: fonts build
	$(VENV)/bin/cllstr demo --out $(DEMO_DIR) --scale $(DEMO_SCALE) --iters $(DEMO_ITERS)

bench: build
	$(PY) benchmarks/bench_ctc_decode.py

lint: venv
	$(VENV)/bin/ruff check cllstr cli tests benchmarks

clean:
	rm -rf build cmake-build cmake-build.log cllstr/_C*.so cllstr/data/dali/libcllstr_dali.so *.egg-info
