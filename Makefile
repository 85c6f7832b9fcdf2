# cllstr — one-command set-up on a fresh machine:
#   make demo   synthesise a small 7-script dataset, train a recogniser, evaluate, show what it reads (reads.png)
#   make test   system packages + venv + build (C++ always, CUDA when available) + ctest + pytest
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

.PHONY: help fonts fonts-full venv build test pytest ctest coverage demo bench lint clean

help:
	@echo "make demo | make test | make build | make bench | make lint | make clean"

# System packages: Debian fonts for the synthetic engine (the font catalogue of cllstr/synth/catalog.py), fontconfig
# and libraqm for Pillow's text shaping, cmake for the C++ tests. `make fonts` installs the small font set (the Noto
# faces plus one or two families per script), `make fonts-full` every catalogue family (~80 packages). Installed with
# apt-get when run as root; otherwise one line says what to install (and the tests that need them say so too). The
# lists must equal `cllstr synth fonts --packages --font-set small|full` (tests/test_synth_catalog.py checks it).
FONTS_SMALL := fonts-dejavu-core fonts-freefont-ttf fonts-ipafont-gothic fonts-kacst-one fonts-liberation2 \
	fonts-lohit-beng-bengali fonts-lohit-deva fonts-nanum fonts-noto-cjk fonts-noto-core fonts-wqy-microhei
FONTS_FULL := $(FONTS_SMALL) fonts-alee fonts-arabeyes fonts-arphic-gbsn00lp fonts-arphic-gkai00mp \
	fonts-arphic-ukai fonts-arphic-uming fonts-baekmuk fonts-beng-extra fonts-cantarell fonts-comfortaa \
	fonts-crosextra-caladea fonts-crosextra-carlito fonts-deva-extra fonts-droid-fallback fonts-ebgaramond \
	fonts-farsiweb fonts-femkeklaver fonts-gargi fonts-go fonts-hanazono fonts-hosny-amiri fonts-hosny-thabit \
	fonts-ipaexfont-gothic fonts-ipaexfont-mincho fonts-ipafont-mincho fonts-junicode fonts-kacst fonts-kalapi \
	fonts-konatu fonts-kouzan-mouhitsu fonts-lato fonts-league-spartan fonts-lemonada fonts-lexi-gulim \
	fonts-lexi-saebom fonts-linuxlibertine fonts-lobster fonts-lohit-beng-assamese fonts-lohit-deva-marathi \
	fonts-lohit-deva-nepali fonts-motoya-l-cedar fonts-motoya-l-maruberi fonts-mplus fonts-nakula fonts-nanum-extra \
	fonts-open-sans fonts-oxygen fonts-quicksand fonts-roboto-unhinted fonts-sahadeva fonts-samyak-deva fonts-sarai \
	fonts-sawarabi-gothic fonts-sawarabi-mincho fonts-seto fonts-sil-andika fonts-sil-gentium fonts-sil-harmattan \
	fonts-sil-lateef fonts-sil-scheherazade fonts-texgyre fonts-umeplus fonts-unfonts-core fonts-unfonts-extra \
	fonts-urw-base35 fonts-vlgothic fonts-wqy-zenhei
# Font packages are checked with dpkg-query where it exists (Debian); elsewhere by the Noto families fontconfig knows.
SYS_PACKAGES_CHECK = missing=""; \
	command -v cmake >/dev/null 2>&1 || missing="$$missing cmake"; \
	command -v fc-list >/dev/null 2>&1 || missing="$$missing fontconfig"; \
	if command -v dpkg-query >/dev/null 2>&1; then \
		for p in $(FONT_PACKAGES); do \
			dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
		done; \
	else \
		fc-list 2>/dev/null | grep -q "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
		fc-list 2>/dev/null | grep -q "NotoSansBengali" || missing="$$missing fonts-noto-core"; \
	fi; \
	{ ldconfig -p 2>/dev/null | grep -q "libraqm"; } || missing="$$missing libraqm0"

define INSTALL_SYS_PACKAGES
	@$(SYS_PACKAGES_CHECK); \
	if [ -z "$$missing" ]; then \
		echo "system packages found ($(FONT_SET_NAME) font set, fontconfig, libraqm, cmake)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing > /dev/null; \
	else \
		echo "missing Debian packages:$$missing; install them with: sudo apt-get install$$missing"; \
	fi
endef

fonts: FONT_PACKAGES = $(FONTS_SMALL)
fonts: FONT_SET_NAME = small
fonts:
	$(INSTALL_SYS_PACKAGES)

fonts-full: FONT_PACKAGES = $(FONTS_FULL)
fonts-full: FONT_SET_NAME = full
fonts-full:
	$(INSTALL_SYS_PACKAGES)

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
	$(PY) -c "from cllstr.data.loading.dali import plugin_status; print('DALI plugin:', plugin_status())"
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

test: fonts build
	$(MAKE) --no-print-directory ctest
	$(PY) -m pytest -q --require-native tests

# Line and branch coverage of the cllstr package over the whole suite (no gate); the HTML report in htmlcov/.
coverage: build
	$(PY) -m pytest -q --require-native --cov=cllstr --cov-branch --cov-report=term-missing:skip-covered \
		--cov-report=html tests

demo: fonts build
	$(VENV)/bin/cllstr demo --out $(DEMO_DIR)

bench: build
	$(PY) benchmarks/bench_ctc_decode.py

lint: venv
	$(VENV)/bin/ruff check cllstr tests benchmarks

clean:
	rm -rf build cmake-build cmake-build.log cllstr/_C*.so cllstr/data/loading/dali/libcllstr_dali.so *.egg-info
