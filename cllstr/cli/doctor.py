"""``cllstr doctor``: what this installation can do — versions, native kernels, text shaping and fonts per script."""

from __future__ import annotations

import platform

from rich.console import Console
from rich.table import Table


def _dali_version() -> str:
    try:
        import nvidia.dali as dali
    except ImportError:
        return "not installed (pip install nvidia-dali-cuda130)"
    except Exception as exc:  # a broken DALI install should not break the report
        return f"import failed: {type(exc).__name__}: {exc}"
    return str(dali.__version__)


def doctor() -> None:
    """Print torch/CUDA/DALI versions, whether the native ops and the DALI plugin loaded, and the fonts per script."""
    import torch
    from PIL import __version__ as pil_version
    from PIL import features

    import cllstr
    from cllstr import ops
    from cllstr.data.loading.dali import plugin_status
    from cllstr.scripts import SCRIPTS, list_scripts
    from cllstr.synth.fonts import FontNotFoundError, find_fonts

    console = Console()
    env = Table(title="cllstr doctor", show_header=False)
    env.add_row("cllstr", cllstr.__version__)
    env.add_row("python", platform.python_version())
    env.add_row("torch", f"{torch.__version__} (CUDA build: {torch.version.cuda or 'no'})")
    cuda = torch.cuda.is_available()
    env.add_row("CUDA device", torch.cuda.get_device_name(0) if cuda else "none available")
    env.add_row("DALI", _dali_version())
    env.add_row("DALI plugin (CPU resize)", plugin_status())
    env.add_row("native library", "loaded" if ops.HAS_NATIVE else f"not loaded ({ops.NATIVE_ERROR})")
    for device in ("cpu", "cuda"):
        env.add_row(f"native {device} kernels", "yes" if ops.has_kernel("ctc_greedy_decode", device) else "no")
    raqm = features.check("raqm")
    env.add_row("Pillow / raqm shaping", f"{pil_version} / {features.version('raqm') if raqm else 'MISSING'}")
    console.print(env)

    fonts = Table(title="fonts per script (fontconfig)")
    fonts.add_column("script")
    fonts.add_column("faces", justify="right")
    fonts.add_column("first face")
    missing = []
    for name in list_scripts():
        try:
            faces = find_fonts(SCRIPTS[name])
            fonts.add_row(name, str(len(faces)), str(faces[0]))
        except FontNotFoundError as exc:
            missing.append(name)
            fonts.add_row(name, "0", f"[red]{exc}[/red]")
    console.print(fonts)
    if missing or not raqm:
        console.print("[yellow]the synthetic engine cannot render: "
                      f"{'raqm missing; ' if not raqm else ''}{'no font for ' + ', '.join(missing) if missing else ''}"
                      "[/yellow]")
