"""Study plots (matplotlib, Agg backend): a heatmap of each row's gain over its baseline per language, and grouped
bars of every row per language with the seed std as error bars. One pair of PNGs per model and metric."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cllstr.atomic import atomic_open

__all__ = ["plot_study", "gain_heatmap", "language_bars"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _tick(label: str) -> str:
    """Axis tick text: long column names (``Avg low-resource``) wrap after the first word."""
    return label.replace(" ", "\n", 1) if len(label) > 6 else label


def gain_heatmap(gains: Mapping[str, Mapping[str, Any]], columns: list[str], title: str, path: Path,
                 lower_is_better: bool = False) -> Path:
    """Heatmap ``rows x columns`` of mean gains (points); green is better, annotated, ``–`` where missing.

    Args:
        gains: ``{row: {"baseline": str, "langs": {col: {"stat": Stat, ...}}}}`` (from ``build_tables``).
        columns: Column order (languages then ``Avg``).
        title: Figure title.
        path: PNG to write.
        lower_is_better: Flip the colours (CER).
    """
    import numpy as np

    plt = _plt()
    rows = list(gains)
    data = np.full((len(rows), len(columns)), np.nan)
    for i, row in enumerate(rows):
        for j, col in enumerate(columns):
            cell = gains[row]["langs"].get(col)
            if cell is not None:
                data[i, j] = 100 * cell["stat"].mean
    lim = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
    lim = lim or 1.0
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(columns), 1.2 + 0.5 * len(rows)))
    cmap = plt.get_cmap("RdYlGn_r" if lower_is_better else "RdYlGn").with_extremes(bad="#eeeeee")
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(columns)), [_tick(c) for c in columns])
    ax.set_yticks(range(len(rows)), [f"{r} vs {gains[r]['baseline']}" for r in rows])
    for i in range(len(rows)):
        for j in range(len(columns)):
            ax.text(j, i, "–" if np.isnan(data[i, j]) else f"{data[i, j]:+.1f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="gain (points)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)
    return path


def language_bars(cells: Mapping[str, Mapping[str, Any]], columns: list[str], title: str, path: Path,
                  ylabel: str) -> Path:
    """Grouped bars: one group per column (language), one bar per row, error bars = std over seeds."""
    import numpy as np

    plt = _plt()
    rows = [r for r in cells if cells[r]]
    width = 0.8 / max(1, len(rows))
    fig, ax = plt.subplots(figsize=(2.0 + 1.1 * len(columns), 3.6))
    x = np.arange(len(columns))
    for i, row in enumerate(rows):
        means = [100 * cells[row][c].mean if c in cells[row] else np.nan for c in columns]
        stds = [100 * cells[row][c].std if c in cells[row] else 0.0 for c in columns]
        ax.bar(x - 0.4 + width * (i + 0.5), means, width, yerr=stds, capsize=2, label=row)
    ax.set_xticks(x, [_tick(c) for c in columns])
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=max(1, len(rows) // 8 + 1), loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)
    return path


def plot_study(res: Any, built: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Heatmap + bars per model and metric; returns the written files.

    The primary metric's files are ``gain_heatmap_<model>.png`` and ``bars_<model>.png``; every other metric of the
    report adds ``..._<metric>.png`` (at small scales word accuracy is often 0 everywhere and 1-NED tells more).
    """
    from cllstr.study.report import METRIC_TITLES, _slug
    from cllstr.study.spec import LOWER_IS_BETTER

    out = Path(out_dir)
    columns = built["all_columns"]
    files = []
    for model in res.models:
        for i, metric in enumerate(res.spec.report.metrics):
            name = METRIC_TITLES[metric]
            suffix = _slug(model) + ("" if i == 0 else f"_{metric}")
            gains = built["gains"][model][metric]
            if gains:
                files.append(gain_heatmap(gains, columns, f"{res.spec.name} / {model}: gain in {name} over baseline",
                                          out / f"gain_heatmap_{suffix}.png", metric in LOWER_IS_BETTER))
            cells = built["tables"][model][metric]["cells"]
            files.append(language_bars(cells, columns, f"{res.spec.name} / {model}: {name} per language",
                                       out / f"bars_{suffix}.png", f"{name} (%)"))
    return files
