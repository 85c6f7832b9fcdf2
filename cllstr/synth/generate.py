"""Multi-process generation of synthetic LMDBs, streamed into the data layer's writer, resumable.

Work is cut into chunks of consecutive sample indices. Worker processes render and encode chunks (each worker keeps
one :class:`~cllstr.synth.render.Renderer` per dataset configuration, so fonts and word lists load once); the parent
receives chunks *in index order* (``Pool.imap``) and appends them to the writer. Record ``k`` (1-based) of an LMDB is
therefore always sample ``k - 1`` of ``(seed, index)``: the output does not depend on the number of workers, and an
interrupted run resumes exactly where the writer's last commit ended (``LmdbWriter(resume=True)``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from cllstr.interrupt import StopRequest
from cllstr.synth.appearance import encode_image
from cllstr.synth.fontset import resolve_fonts
from cllstr.synth.profiles import DatasetSpec
from cllstr.synth.render import Renderer
from cllstr.synth.styles import get_style, with_overrides

__all__ = ["RenderConfig", "JobResult", "generate", "render_chunk", "dataset_status"]

WriterFactory = Callable[..., Any]


@dataclass(frozen=True)
class RenderConfig:
    """Everything a worker needs to rebuild a dataset's renderer (picklable, hashable)."""

    scripts: tuple[str, ...]
    style: str
    seed: int
    font_dir: str | None = None
    bg_dir: str | None = None
    image_format: str = "jpeg"
    font_set: str = "full"
    style_set: str | None = None


@dataclass
class JobResult:
    """Outcome of one dataset.

    Attributes:
        path: LMDB directory.
        size: Samples it holds now.
        written: Samples written by this run.
        resumed_from: Samples already present when this run started.
        skipped_words: Words rejected for missing glyphs.
        status: ``"written"``, ``"resumed"`` or ``"complete"`` (nothing to do).
    """

    path: Path
    size: int
    written: int = 0
    resumed_from: int = 0
    skipped_words: int = 0
    status: str = "written"
    extra: dict = field(default_factory=dict)


_RENDERERS: dict[RenderConfig, Renderer] = {}


def _renderer(cfg: RenderConfig) -> Renderer:
    r = _RENDERERS.get(cfg)
    if r is None:
        style = with_overrides(get_style(cfg.style), cfg.style_set)
        r = _RENDERERS[cfg] = Renderer(
            cfg.scripts, style, seed=cfg.seed, font_set=cfg.font_set, font_dir=cfg.font_dir, bg_dir=cfg.bg_dir
        )
    return r


def render_chunk(task: tuple[int, RenderConfig, int, int]) -> tuple[int, list[tuple[bytes, str]], int]:
    """Render and encode samples ``[start, stop)``; returns ``(job id, [(image bytes, label)], skipped words)``."""
    job, cfg, start, stop = task
    r = _renderer(cfg)
    before = sum(r.skipped.values())
    out = []
    for i in range(start, stop):
        s = r(i)
        out.append((encode_image(s.image, cfg.image_format, s.quality), s.label))
    return job, out, sum(r.skipped.values()) - before


def dataset_status(path: Path, spec: DatasetSpec, font_set: str = "full", style_set: str | None = None) -> str:
    """``"absent"``, ``"complete"`` (a finished LMDB of this spec) or ``"mismatch"`` (a different finished LMDB).

    The font set and style overrides are compared when the LMDB records them (LMDBs written before they existed
    count as matching).
    """
    from cllstr.data.store.format import is_lmdb_dir
    from cllstr.data.store.reader import LmdbReader

    if not path.exists():
        return "absent"
    if not is_lmdb_dir(path):
        return "mismatch"
    reader = LmdbReader(path)
    try:
        synth = reader.meta.get("synth", {})
        same = synth.get("seed") == spec.seed and synth.get("style") == spec.style and len(reader) == spec.size
        same = same and synth.get("font_set", font_set) == font_set and synth.get("style_set") in (None, style_set)
    finally:
        reader.close()
    return "complete" if same else "mismatch"


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        # Average since the start (pool start-up included): rich's windowed speed jumps on chunked arrivals.
        elapsed = task.finished_time if task.finished else task.elapsed
        if not elapsed or not task.completed:
            return Text("-- img/s", style="progress.data.speed")
        return Text(f"{task.completed / elapsed:,.0f} img/s", style="progress.data.speed")


def _chunks(
    job: int, cfg: RenderConfig, start: int, stop: int, chunk: int
) -> Iterator[tuple[int, RenderConfig, int, int]]:
    for a in range(start, stop, chunk):
        yield job, cfg, a, min(stop, a + chunk)


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to the parent, which stops them and keeps what was committed (no worker tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def generate(
    specs: Sequence[DatasetSpec],
    out_root: str | Path,
    *,
    workers: int | None = None,
    chunk: int = 32,
    image_format: str = "jpeg",
    font_dir: str | None = None,
    bg_dir: str | None = None,
    font_set: str = "full",
    style_set: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    writer_factory: WriterFactory | None = None,
    console: Console | None = None,
) -> list[JobResult]:
    """Render every dataset of ``specs`` into ``out_root/<spec.relpath>`` (an LMDB each).

    Finished datasets of the same spec are left alone; unfinished ones continue from their last commit; a finished
    dataset of a *different* spec is an error unless ``overwrite``.

    Args:
        specs: Datasets to produce (e.g. ``mlt19_mini(scale)``); ``relpath`` may be ``""`` to write ``out_root``.
        out_root: Output folder (or the LMDB itself when a spec's ``relpath`` is empty).
        workers: Processes; default ``os.cpu_count()``; ``<= 1`` renders in this process.
        chunk: Samples per task.
        image_format: ``jpeg`` or ``png``.
        font_dir: Folder of user fonts, mixed into the font set as more families.
        bg_dir: Background images folder.
        font_set: Catalogue font set (``noto``, ``small``, ``full``, ``none``), see :mod:`cllstr.synth.catalog`.
        style_set: Style field overrides (``"occlusion_prob=0;jpeg_quality=30:60"``), see ``with_overrides``.
        overwrite: Replace finished datasets whose spec differs.
        progress: Show a rich progress bar with images/s.
        writer_factory: ``LmdbWriter``-compatible class (default ``cllstr.data.store.LmdbWriter``).
        console: Rich console for the progress bar.

    Returns:
        One :class:`JobResult` per spec, in order.

    Raises:
        FileExistsError: a finished dataset differs from its spec and ``overwrite`` is False.
    """
    if writer_factory is None:
        from cllstr.data.store.writer import LmdbWriter as writer_factory
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    workers = os.cpu_count() or 1 if workers is None else workers
    for spec in specs:  # bad style names/overrides or fonts fail here, before any LMDB is opened
        with_overrides(get_style(spec.style), style_set)
        for name in spec.scripts:
            resolve_fonts(name, font_set, font_dir)
    root = Path(out_root)
    results = [JobResult(root / s.relpath, s.size) for s in specs]
    todo: list[int] = []
    replace: set[int] = set()
    for j, spec in enumerate(specs):
        state = dataset_status(results[j].path, spec, font_set, style_set)
        if state == "complete":
            results[j].status = "complete"
        elif state == "mismatch" and not overwrite:
            raise FileExistsError(
                f"{results[j].path} already holds a different dataset (not {spec.size} {spec.style} samples of seed "
                f"{spec.seed}); pass --overwrite to replace it or choose another --out"
            )
        else:
            todo.append(j)
            if state == "mismatch":
                replace.add(j)  # overwrite: start from scratch instead of appending to the other dataset

    with ExitStack() as stack:
        # Ctrl-C is taken between chunks (pool workers ignore it, see _ignore_sigint): what was added is committed
        stop = stack.enter_context(StopRequest())
        writers, tasks = {}, []
        for j in todo:
            spec, res = specs[j], results[j]
            res.path.parent.mkdir(parents=True, exist_ok=True)
            fonts = {s: [f.name for f in resolve_fonts(s, font_set, font_dir).families] for s in spec.scripts}
            meta = {
                **spec.meta,
                "source": "cllstr.synth",
                "scripts": list(spec.scripts),
                "script": spec.scripts[0] if len(spec.scripts) == 1 else None,
                "synth": {"seed": spec.seed, "style": spec.style, "size": spec.size, "format": image_format,
                          "font_set": font_set, "style_set": style_set, "font_families": fonts},
            }
            w = stack.enter_context(writer_factory(res.path, resume=j not in replace, overwrite=overwrite, meta=meta))
            writers[j] = w
            res.resumed_from = min(w.num_samples, spec.size)
            res.status = "resumed" if res.resumed_from else "written"
            # The checked font set is resolved here, before the pool forks, so workers inherit it instead of
            # re-running the font checks each.
            cfg = RenderConfig(
                tuple(spec.scripts), spec.style, spec.seed, font_dir, bg_dir, image_format, font_set, style_set
            )
            tasks.extend(_chunks(j, cfg, res.resumed_from, spec.size, chunk))
        remaining = {j: specs[j].size - results[j].resumed_from for j in todo}
        for j in [j for j in todo if remaining[j] == 0]:
            writers[j].close()

        total = sum(remaining.values())
        stop.check()
        pool = None
        if workers > 1 and len(tasks) > 1:
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            ctx = mp.get_context(method)
            pool = stack.enter_context(ctx.Pool(min(workers, len(tasks)), initializer=_ignore_sigint))
        stream = pool.imap(render_chunk, tasks) if pool is not None else map(render_chunk, tasks)
        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not progress,
        )
        with bar:
            overall = bar.add_task("synth", total=total)
            t0 = time.perf_counter()
            for j, items, skipped in stream:
                stop.check()  # Ctrl-C: stop between chunks; what was added is committed, a re-run resumes
                w = writers[j]
                for image, label in items:
                    w.add(image, label)
                results[j].written += len(items)
                results[j].skipped_words += skipped
                remaining[j] -= len(items)
                bar.update(overall, advance=len(items), description=str(specs[j].relpath or results[j].path.name))
                if remaining[j] == 0:
                    w.meta.setdefault("synth", {})["skipped_words"] = results[j].skipped_words
                    w.close()
            elapsed = time.perf_counter() - t0
    for r in results:
        r.extra["seconds"] = round(elapsed, 3) if todo else 0.0
    return results
