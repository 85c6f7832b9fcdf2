"""Synthetic multilingual word-crop engine (SynthMLT-like): fonts, words, appearance, rendering, LMDB generation.

Entry points: :class:`~cllstr.synth.render.Renderer` (one crop per ``(seed, index)``),
:func:`~cllstr.synth.generate.generate` (multi-process, resumable LMDB writing), the dataset profiles of
:mod:`cllstr.synth.profiles` (``mlt19-mini``) and :func:`~cllstr.synth.preview.write_contact_sheet`.
"""

from __future__ import annotations

__all__: list[str] = []
