"""Evaluation: metrics (``metrics``: word accuracy, reference 1-NED, CER), CTC decoding to logical-order text
(``decode``) and per-language evaluation with JSON/Markdown reports (``evaluate``).
"""
