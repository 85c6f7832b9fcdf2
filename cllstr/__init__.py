"""cllstr: a toolkit for multilingual scene text recognition and cross-lingual learning studies."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Recognizer", "__version__"]


def __getattr__(name: str) -> object:
    # Lazy: ``import cllstr`` stays light (no torch import) until the inference API is asked for.
    if name == "Recognizer":
        from cllstr.recognizer import Recognizer

        return Recognizer
    raise AttributeError(f"module 'cllstr' has no attribute {name!r}")
