"""Scoring a model on loaders, below training (validation) and evaluation (checkpoints): ``metrics`` (word accuracy,
the reference 1-NED, CER), ``evaluate`` (per-language scores with JSON/Markdown reports) and ``script_id`` (accuracy
and confusion of a script head)."""
