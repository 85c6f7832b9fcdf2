"""Quiet loading of cllstr's DALI plugin ``libcllstr_dali.so`` (built from ``csrc/dali`` when DALI is installed).

The plugin adds the CPU operator ``fn.cllstr.text_resize``: Pillow's ``Image.resize`` (bit-exact, any filter of
:data:`~cllstr.data.loading.dali.ops.INTERPOLATIONS`) of a source region, fixed or keep-ratio with edge padding, i.e.
the torch loader's resize in one operator, several times faster than DALI's CPU ``fn.resize``. It is loaded once, on the
first import of this module; :data:`HAS_PLUGIN` tells whether that worked and :data:`PLUGIN_ERROR` why not. A missing
plugin is not an error: :func:`cllstr.data.loading.dali.ops.resize` then uses DALI's own operators.
``CLLSTR_DALI_PLUGIN=0`` in the environment leaves it unloaded (to compare against DALI's resize).
"""

from __future__ import annotations

import os
from pathlib import Path

from nvidia.dali import plugin_manager

__all__ = ["HAS_PLUGIN", "LIBRARY", "PLUGIN_ERROR"]

#: Where the build puts the plugin (next to this module; ``pip install --no-build-isolation -e .``).
LIBRARY = Path(__file__).with_name("libcllstr_dali.so")

REBUILD_HINT = "rebuild with `make build` (DALI installed, CUDA headers under CUDA_HOME)"


def _load() -> str | None:
    if os.environ.get("CLLSTR_DALI_PLUGIN", "1") == "0":
        return "disabled by CLLSTR_DALI_PLUGIN=0"
    if not LIBRARY.is_file():
        return f"{LIBRARY} is not built; {REBUILD_HINT}"
    try:
        plugin_manager.load_library(str(LIBRARY))
    except RuntimeError as exc:  # built against another DALI, or a broken build
        return f"loading {LIBRARY} failed: {exc}"
    return None


PLUGIN_ERROR: str | None = _load()
HAS_PLUGIN: bool = PLUGIN_ERROR is None

