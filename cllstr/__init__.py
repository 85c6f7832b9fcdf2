"""cllstr: a toolkit for multilingual scene text recognition and cross-lingual learning studies."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
