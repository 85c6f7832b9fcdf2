"""Task grouping (Huang et al.): the pure functions behind the grouped objective, and the grouping options.

Notation (tasks = scripts, ``t = 7`` in ``SCRIPT_ORDER``; ``m`` heads; ``B`` words):

- ``P_TM`` ``(t, m)``: task → head. Training: :func:`gumbel_softmax` of ``W`` row-wise (``hard=False``); inference:
  ``softmax(W)``; a fixed grouping: a constant one-hot.
- ``P_WT`` ``(B, t)``: word → task, the one-hot of each word's script (:func:`word_task_probs`).
- ``P_WM = P_WT @ P_TM`` ``(B, m)``: word → head.
- Integrated loss (eq. 8): ``sum_words sum_heads (P_WM + eps) * CTC_head(word)`` (:func:`integrated_loss`).
- Grouping loss (eq. 9): ``sum_heads max(mu_j - sum_tasks P_TM[task, head], 0)`` (:func:`grouping_loss`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cllstr.scripts import SCRIPT_ORDER, get_script, guess_script, script_by_letter

__all__ = [
    "GroupingError", "GroupingSpec", "parse_grouping", "check_grouping", "gumbel_softmax", "task_head_probs",
    "script_index", "word_task_probs", "word_head_probs", "integrated_loss", "grouping_loss", "route",
    "assignment", "grouping_string", "assignment_changes", "model_spec",
]


class GroupingError(ValueError):
    """A bad grouping option; ``option`` names the command-line option (``--heads``, ``--grouping``...)."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class GroupingSpec:
    """A parsed ``--grouping``: ``mode`` is ``none``, ``gumbel`` or ``fixed``; ``groups`` (fixed only) lists for each
    head the script indices (into ``SCRIPT_ORDER``) that it reads."""

    mode: str
    groups: tuple[tuple[int, ...], ...] | None = None


def parse_grouping(spec: str, heads: int | None = None) -> GroupingSpec:
    """Parse ``none``, ``gumbel``, ``fixed:AK-BCHJL`` (one head per ``-``-separated group of script letters) or
    ``fixed:one-per-script``; with ``heads``, a fixed grouping must have that many groups.

    Raises:
        GroupingError: unknown mode or letter, a script missing or repeated, a group count that differs from ``heads``.
    """
    spec = spec.strip()
    if heads is not None and heads < 1:
        raise GroupingError(f"heads must be >= 1, got {heads}", "--heads")
    if spec in ("none", "gumbel"):
        return GroupingSpec(spec)
    if not spec.startswith("fixed:"):
        raise GroupingError(f"unknown grouping {spec!r}; use none, gumbel, fixed:AK-BCHJL or fixed:one-per-script",
                            "--grouping")
    body = spec.removeprefix("fixed:")
    if body == "one-per-script":
        groups = tuple((i,) for i in range(len(SCRIPT_ORDER)))
    else:
        groups_l: list[tuple[int, ...]] = []
        seen: dict[int, str] = {}
        for part in body.split("-"):
            if not part:
                raise GroupingError(f"grouping {spec!r} has an empty group", "--grouping")
            group = []
            for letter in part:
                try:
                    i = SCRIPT_ORDER.index(script_by_letter(letter).name)
                except (KeyError, ValueError):
                    known = "".join(get_script(n).letter for n in SCRIPT_ORDER)
                    raise GroupingError(f"grouping {spec!r}: unknown script letter {letter!r} (known: {known})",
                                        "--grouping") from None
                if i in seen:
                    raise GroupingError(f"grouping {spec!r} repeats script {letter!r}", "--grouping")
                seen[i] = letter
                group.append(i)
            groups_l.append(tuple(group))
        missing = [get_script(SCRIPT_ORDER[i]).letter for i in range(len(SCRIPT_ORDER)) if i not in seen]
        if missing:
            raise GroupingError(f"grouping {spec!r} misses script(s) {''.join(missing)}; every script needs a head",
                                "--grouping")
        groups = tuple(groups_l)
    if heads is not None and len(groups) != heads:
        raise GroupingError(f"grouping {spec!r} has {len(groups)} groups but --heads is {heads}", "--heads")
    return GroupingSpec("fixed", groups)


def check_grouping(heads: int, grouping: str, tau: float, epsilon: float, mu: float, weight: float) -> GroupingSpec:
    """Validate the grouping options together; returns the parsed spec. ``auto`` is ``none`` for one head and
    ``gumbel`` for several; ``none`` needs ``heads == 1``."""
    if grouping.strip() == "auto":
        if heads < 1:
            raise GroupingError(f"heads must be >= 1, got {heads}", "--heads")
        grouping = "none" if heads == 1 else "gumbel"
    spec = parse_grouping(grouping, heads)
    if spec.mode == "none" and heads != 1:
        raise GroupingError(f"--grouping none needs --heads 1, got {heads}; use gumbel or fixed:...", "--grouping")
    for option, value in (("--tau", tau), ("--epsilon", epsilon), ("--mu", mu), ("--grouping-weight", weight)):
        if not value == value or value < 0 or (option == "--tau" and value == 0):
            raise GroupingError(f"must be {'> 0' if option == '--tau' else '>= 0'}, got {value}", option)
    return spec


def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Relaxed (``hard=False``) Gumbel-Softmax samples of ``logits`` ``(t, m)``, row-wise, with ``generator``'s noise
    (``torch.nn.functional.gumbel_softmax`` draws from the global generator, which a resume could not replay alone).
    """
    u = torch.rand(logits.shape, generator=generator, dtype=torch.float32).to(logits.device)
    g = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
    return ((logits.float() + g) / tau).softmax(dim=-1)


def task_head_probs(logits: torch.Tensor, tau: float, training: bool,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """``P_TM`` ``(t, m)``: Gumbel-Softmax of ``W`` in training, ``softmax(W)`` at inference."""
    return gumbel_softmax(logits, tau, generator) if training else logits.float().softmax(dim=-1)


def script_index(label: str, script: str | None = None) -> int:
    """Index into ``SCRIPT_ORDER`` of a word's script: from its dataset's script name (``LAT``, ``SynthMLT_LAT``)
    else from its characters (:func:`cllstr.scripts.guess_script`); -1 when neither tells."""
    for name in (script.removeprefix("SynthMLT_") if script else None, guess_script(label)):
        if name in SCRIPT_ORDER:
            return SCRIPT_ORDER.index(name)
    return -1


def word_task_probs(indices: torch.Tensor, tasks: int = len(SCRIPT_ORDER)) -> torch.Tensor:
    """``P_WT`` ``(B, t)``: one-hot of ``indices`` ``(B,)``; a word of unknown script (-1) is spread uniformly."""
    out = torch.full((indices.numel(), tasks), 1.0 / tasks)
    known = indices >= 0
    out[known] = F.one_hot(indices[known].long(), tasks).float()
    return out


def word_head_probs(p_wt: torch.Tensor, p_tm: torch.Tensor) -> torch.Tensor:
    """``P_WM = P_WT @ P_TM``: ``(B, t) @ (t, m)`` to ``(B, m)``."""
    return p_wt.to(p_tm) @ p_tm


def integrated_loss(ctc: torch.Tensor, p_wm: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Eq. 8: ``sum_words sum_heads (P_WM + epsilon) * CTC_head(word)``.

    Args:
        ctc: ``(B, m)`` per-word CTC loss of each head (``reduction='none'``).
        p_wm: ``(B, m)`` word-to-head probabilities.
        epsilon: Base coefficient (>= 0): every head also learns every word a little.
    """
    if epsilon < 0:
        raise GroupingError(f"epsilon must be >= 0, got {epsilon}", "--epsilon")
    return ((p_wm + epsilon) * ctc).sum()


def grouping_loss(p_tm: torch.Tensor, mu: float | Sequence[float] = 1.0) -> torch.Tensor:
    """Eq. 9: ``sum_heads max(mu_j - sum_tasks P_TM[task, head], 0)`` — every head should receive some task."""
    mu_t = torch.as_tensor(mu, dtype=p_tm.dtype, device=p_tm.device)
    return (mu_t - p_tm.sum(dim=0)).clamp(min=0).sum()


def route(script_probs: torch.Tensor, p_tm: torch.Tensor) -> torch.Tensor:
    """``(B,)`` head of each word at inference: ``argmax(script_probs @ P_TM)``."""
    return (script_probs.to(p_tm) @ p_tm).argmax(dim=-1)


def assignment(p_tm: torch.Tensor) -> list[int]:
    """Head of each task (``argmax`` of each row of ``P_TM`` or ``W``)."""
    return [int(j) for j in p_tm.argmax(dim=-1).tolist()]


def grouping_string(p_tm: torch.Tensor) -> str:
    """The grouping as script letters, e.g. ``{A,K} {B,J} {C} {H} {L}``: one brace per head that receives a task,
    ordered by their first script (heads are interchangeable)."""
    groups: dict[int, list[str]] = {}
    for i, j in enumerate(assignment(p_tm)):
        groups.setdefault(j, []).append(get_script(SCRIPT_ORDER[i]).letter)
    return " ".join("{" + ",".join(g) + "}" for g in groups.values())


def assignment_changes(before: torch.Tensor | Sequence[int], after: torch.Tensor | Sequence[int]) -> int:
    """Number of tasks whose head differs between two snapshots (``W``/``P_TM`` matrices or :func:`assignment`
    lists), the paper's count of assignment changes."""
    a = assignment(before) if isinstance(before, torch.Tensor) else list(before)
    b = assignment(after) if isinstance(after, torch.Tensor) else list(after)
    return sum(1 for x, y in zip(a, b, strict=True) if x != y)


def model_spec(model: str, model_kwargs: dict, grouping: object) -> tuple[str, dict]:
    """The registered model name and kwargs a run builds: ``model`` itself for ``mode="none"``, else ``grouped``
    over ``model`` as the backbone with ``grouping.heads`` heads (and the fixed groups).

    Args:
        model: ``TrainConfig.model`` (a backbone, or ``grouped`` with its own kwargs).
        model_kwargs: ``TrainConfig.model_kwargs``.
        grouping: A :class:`cllstr.train.config.GroupingConfig`.
    """
    g = grouping
    spec = check_grouping(g.heads, g.mode, g.tau, g.epsilon, g.mu, g.weight)
    if spec.mode == "none":
        return model, dict(model_kwargs)
    if model == "grouped":
        kwargs = dict(model_kwargs)
    else:
        kwargs = {"backbone": model, "backbone_kwargs": dict(model_kwargs), "hidden_size": g.hidden_size}
    kwargs["heads"] = g.heads
    if spec.groups is not None:
        kwargs["groups"] = [list(x) for x in spec.groups]
    return "grouped", kwargs
