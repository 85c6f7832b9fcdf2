"""Build of cllstr, its native library ``cllstr._C`` and its DALI plugin ``cllstr/data/loading/dali/libcllstr_dali.so``.

C++ sources (``csrc/**/*.cpp``) are always compiled. CUDA sources (``csrc/**/*.cu``) are compiled when torch is a CUDA
build and ``CUDA_HOME`` is found, or when ``FORCE_CUDA=1``; ``USE_CUDA=0`` skips them. ``MAX_JOBS`` is honoured by
torch's ninja build. Install with ``pip install --no-build-isolation -e .`` so the installed torch is the one built
against.

The DALI plugin (``csrc/dali/*.cc``, a plain shared library that DALI's ``plugin_manager.load_library`` loads, not a
Python extension) is compiled when ``nvidia.dali`` is importable, with DALI's compile and link flags; DALI's headers
include ``cuda_runtime.h``, looked up under ``CUDA_HOME``, ``/usr/local/cuda`` and the CUDA runtime wheel. Without
DALI (or those headers) it is skipped and the DALI CPU loader falls back to DALI's own resize.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
DALI_PLUGIN = "cllstr.data.loading.dali.libcllstr_dali"


def _log(msg: str) -> None:
    print(f"[cllstr setup] {msg}", file=sys.stderr)


def _extensions() -> tuple[list, dict]:
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
    except ImportError:
        _log("torch is not importable: building without the native library (the pure-PyTorch path will run)")
        return [], {}

    cpp = sorted(glob.glob("csrc/**/*.cpp", recursive=True))
    skip = tuple(os.path.join("csrc", d) for d in ("tests", "dali"))
    cpp = [p for p in cpp if not p.startswith(skip) and "bench" not in p]
    cu = sorted(glob.glob("csrc/**/*.cu", recursive=True))
    if not cpp:
        _log("no C++ sources found: building without the native library")
        return [], {}

    if os.environ.get("USE_CUDA", "1") == "0":
        use_cuda, why = False, "USE_CUDA=0"
    elif os.environ.get("FORCE_CUDA", "0") == "1":
        use_cuda, why = True, "FORCE_CUDA=1"
    elif torch.version.cuda is not None and CUDA_HOME is not None:
        use_cuda = True
        why = f"torch {torch.__version__} is a CUDA {torch.version.cuda} build and CUDA_HOME={CUDA_HOME}"
    else:
        use_cuda = False
        why = "torch is a CPU build" if torch.version.cuda is None else "CUDA_HOME is not set and nvcc was not found"
    if use_cuda and torch.version.cuda is None:
        raise RuntimeError("FORCE_CUDA=1 needs a CUDA build of torch (torch.version.cuda is None); use USE_CUDA=0")

    cxx_flags = ["-O3", "-fopenmp", "-fno-trapping-math", "-Wall", "-Wno-unknown-pragmas"]
    args: dict = {"cxx": cxx_flags}
    define_macros: list[tuple[str, str | None]] = []
    sources = cpp
    ext_cls = CppExtension
    if use_cuda:
        sources = cpp + cu
        ext_cls = CUDAExtension
        define_macros.append(("WITH_CUDA", None))
        args["nvcc"] = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
    _log(f"CUDA kernels: {'ON' if use_cuda else 'OFF'} ({why}); {len(cpp)} C++ and {len(cu) if use_cuda else 0} CUDA "
         f"sources; TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '<torch default>')}; "
         f"MAX_JOBS={os.environ.get('MAX_JOBS', '<ninja default>')}")
    ext = ext_cls(
        name="cllstr._C",
        sources=sources,
        include_dirs=[os.path.join(ROOT, "csrc")],
        define_macros=define_macros,
        extra_compile_args=args,
        extra_link_args=["-fopenmp"],
    )
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


class DaliPlugin(Extension):
    """A plain shared library for DALI's plugin manager, built with its own compiler command (see BuildExt)."""

    def __init__(self, name: str, sources: list[str], depends: list[str], compile_args: list[str],
                 link_args: list[str]) -> None:
        super().__init__(name, sources=sources, depends=depends)
        self.compile_args = compile_args
        self.link_args = link_args


def _cuda_include() -> str | None:
    """A directory with ``cuda_runtime.h`` (DALI's headers include it), or None."""
    candidates = [os.path.join(os.environ[v], "include") for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    candidates.append("/usr/local/cuda/include")
    site = sysconfig.get_paths()["purelib"]
    candidates += sorted(glob.glob(os.path.join(site, "nvidia", "cu*", "include")), reverse=True)
    candidates.append(os.path.join(site, "nvidia", "cuda_runtime", "include"))
    return next((d for d in candidates if os.path.isfile(os.path.join(d, "cuda_runtime.h"))), None)


def _dali_version() -> str:
    try:
        from nvidia.dali import __version__
    except Exception:  # the version is only for the log
        return "?"
    return str(__version__)


def _dali_plugin() -> list[Extension]:
    try:
        import nvidia.dali.sysconfig as dali_sysconfig
    except Exception as e:  # not installed, or an install that does not load
        _log(f"DALI plugin: OFF (nvidia.dali is not importable: {type(e).__name__}: {e})")
        return []
    cuda_include = _cuda_include()
    if cuda_include is None:
        _log("DALI plugin: OFF (DALI's headers need cuda_runtime.h: set CUDA_HOME to a CUDA toolkit)")
        return []
    # DALI's own headers as system headers: their warnings are not ours.
    dali_flags = [f"-isystem{f[2:]}" if f.startswith("-I") else f for f in dali_sysconfig.get_compile_flags()]
    lib_dirs = [f[2:] for f in dali_sysconfig.get_link_flags() if f.startswith("-L")]
    # -ffp-contract=off: the resize weights must be Pillow's double arithmetic exactly (no fused multiply-add).
    # -Wno-free-nonheap-object: GCC 12's false positive on DALI's SmallVector, instantiated in our sources.
    compile_args = ["-std=c++20", "-O3", "-fPIC", "-fno-trapping-math", "-ffp-contract=off", "-Wall",
                    "-Wno-free-nonheap-object", *dali_flags, f"-isystem{cuda_include}"]
    link_args = ["-shared", *dali_sysconfig.get_link_flags(), *[f"-Wl,-rpath,{d}" for d in lib_dirs]]
    sources = sorted(glob.glob("csrc/dali/*.cc"))
    depends = sorted(glob.glob("csrc/dali/*.h"))
    _log(f"DALI plugin: ON (DALI {_dali_version()}; {len(sources)} sources; CUDA headers from {cuda_include})")
    return [DaliPlugin(DALI_PLUGIN, sources, depends, compile_args, link_args)]


def _build_ext_class(base: type) -> type:
    class BuildExt(base):
        """``base`` (torch's BuildExtension when torch is there) plus the DALI plugin, compiled by one plain command."""

        def get_ext_filename(self, fullname: str) -> str:
            # A plain library name, no Python ABI tag (asked for with the full or the last dotted name).
            if fullname in (DALI_PLUGIN, DALI_PLUGIN.rsplit(".", 1)[1]):
                return os.path.join(*fullname.split(".")) + ".so"
            return super().get_ext_filename(fullname)

        def build_extensions(self) -> None:
            plugins = [e for e in self.extensions if isinstance(e, DaliPlugin)]
            self.extensions = [e for e in self.extensions if not isinstance(e, DaliPlugin)]
            try:
                if self.extensions:
                    super().build_extensions()
                for ext in plugins:
                    self._build_plugin(ext)
            finally:
                self.extensions += plugins

        def _build_plugin(self, ext: DaliPlugin) -> None:
            out = self.get_ext_fullpath(ext.name)
            os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
            cxx = shlex.split(os.environ.get("CXX") or shutil.which("c++") or "g++")
            cmd = [*cxx, *ext.compile_args, *ext.sources, "-o", out, *ext.link_args]
            _log("DALI plugin: " + shlex.join(cmd))
            subprocess.check_call(cmd)

    return BuildExt


ext_modules, cmdclass = _extensions()
ext_modules += _dali_plugin()
if ext_modules:
    cmdclass["build_ext"] = _build_ext_class(cmdclass.get("build_ext", build_ext))

setup(
    packages=find_packages(include=["cllstr", "cllstr.*"]),
    package_data={"cllstr.study": ["data/*.csv"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
