"""Build of cllstr and its native library ``cllstr._C``.

C++ sources (``csrc/**/*.cpp``) are always compiled. CUDA sources (``csrc/**/*.cu``) are compiled when torch is a CUDA
build and ``CUDA_HOME`` is found, or when ``FORCE_CUDA=1``; ``USE_CUDA=0`` skips them. ``MAX_JOBS`` is honoured by
torch's ninja build. Install with ``pip install --no-build-isolation -e .`` so the installed torch is the one built
against.
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


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
    cpp = [p for p in cpp if not p.startswith(os.path.join("csrc", "tests")) and "bench" not in p]
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


ext_modules, cmdclass = _extensions()

setup(
    packages=find_packages(include=["cllstr", "cllstr.*"]) + ["cllstr.cli"],
    package_dir={"cllstr.cli": "cli"},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
    zip_safe=False,
)
