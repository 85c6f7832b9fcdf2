"""The synthetic-realism ablation of issue #20: the same model and budget on four data variants, scored on synthetic
and real photos.

Variants (the two switches of ``cllstr synth``): ``today`` = style ``real`` with the ``noto`` font set (the engine
before issue #20), ``fonts`` = ``real`` + ``full``, ``realism`` = ``realistic`` + ``noto``, ``both`` = ``realistic``
+ ``full``. Each variant renders the seven MLT19-like sets of ``mlt19-mini`` at ``--scale`` (data seed 0, the same
words and sizes for every variant) and trains the ``cllstr demo`` recipe (half-width CRNN with BatchNorm, 7 scripts,
55% Latin, AdamW 2e-3 OneCycle) for ``--iters`` iterations per training seed. Every final checkpoint is scored on
the evaluation split of ``today`` (a fixed synthetic test set), on its own variant's evaluation split, and on the
real-photo development set (``benchmarks/make_realdev.py``).

Everything is resumable: data generation continues, an interrupted training resumes from ``last.pt``, a scored run
is not scored again. Data and checkpoints go under ``--work`` (outside the repository); only the scores
(``runs/<variant>-s<seed>-n<iters>.json``) and the table (``ablation.md``) are written here.

    nice -n 19 python examples/results/synth-realism/ablation.py --work /work/runs/synth-ablation \
        --realdev /work/realdev --iters 2000 --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {"today": ("real", "noto"), "fonts": ("real", "full"), "realism": ("realistic", "noto"),
            "both": ("realistic", "full")}
LANGS = ("ARA", "BEN", "CHI", "HIN", "JPN", "KOR", "LAT")


def make_data(work: Path, variant: str, scale: float) -> Path:
    from cllstr.synth.generate import generate
    from cllstr.synth.profiles import mlt19_mini

    style, font_set = VARIANTS[variant]
    root = work / f"data-{variant}"
    need = {f"{s}/{lang}" for s in ("training", "validation", "evaluation") for lang in LANGS}
    specs = [s for s in mlt19_mini(scale=scale, seed=0, style=style) if s.relpath in need]
    generate(specs, root, workers=1, font_set=font_set, progress=False)
    return root


def train_run(work: Path, variant: str, seed: int, iters: int, data_root: Path) -> tuple[Path, float]:
    from cllstr.cli.demo import (
        DEMO_BATCH,
        DEMO_BATCH_RATIO,
        DEMO_LR,
        DEMO_MODEL,
        DEMO_MODEL_KWARGS,
        DEMO_PCT_START,
        DEMO_SELECT,
    )
    from cllstr.train.config import DataConfig, OptimConfig, TrainConfig
    from cllstr.train.engine import train

    run_dir = work / f"{variant}-s{seed}-n{iters}"
    cfg = TrainConfig(
        model=DEMO_MODEL, model_kwargs=dict(DEMO_MODEL_KWARGS), out_dir=str(run_dir), batch_size=DEMO_BATCH,
        iterations=iters, val_interval=max(iters // 4, 1), save_interval=max(iters // 4, 1), seed=seed,
        data=DataConfig(root=str(data_root), select_data=DEMO_SELECT, batch_ratio=DEMO_BATCH_RATIO, val_samples=300),
        optim=OptimConfig(lr=DEMO_LR, pct_start=DEMO_PCT_START),
    )
    t0 = time.perf_counter()
    train(cfg, resume=(run_dir / "last.pt").is_file())
    return run_dir / "last.pt", time.perf_counter() - t0


def score(ckpt: Path, root: Path) -> dict:
    from cllstr.eval.checkpoint import evaluate_checkpoint

    rep = evaluate_checkpoint(ckpt, root, "evaluation").to_dict()
    keep = ("samples", "accuracy", "one_minus_ned", "cer", "accuracy_ci", "one_minus_ned_ci")
    return {"languages": {k: {m: v.get(m) for m in keep} for k, v in rep["languages"].items()},
            "weighted": {m: rep["weighted"].get(m) for m in keep}}


def table(results: list[dict], iters: int) -> str:
    """Markdown: word accuracy (case-insensitive) mean ± spread over seeds, per variant and test set."""
    sets = (("today", "synthetic eval (today's engine)"), ("own", "synthetic eval (own variant)"),
            ("realdev", "real-photo dev set"))
    lines = [f"### {iters} iterations: word accuracy, case-insensitive (%), mean ± half-range over seeds "
             "(1-NED in brackets)", "",
             "| trained on | seeds | test set | ARA | BEN | CHI | HIN | JPN | KOR | LAT | weighted |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def cell(vals_acc: list[float], vals_ned: list[float]) -> str:
        if not vals_acc:
            return "–"
        m, h = statistics.mean(vals_acc), (max(vals_acc) - min(vals_acc)) / 2
        return f"{m:.1f} ± {h:.1f} ({statistics.mean(vals_ned):.1f})"

    for variant in VARIANTS:
        runs = [r for r in results if r["variant"] == variant and r["iters"] == iters]
        if not runs:
            continue
        for key, title in sets:
            row = [variant, ",".join(str(r["seed"]) for r in runs), title]
            for lang in (*LANGS, "weighted"):
                acc, ned = [], []
                for r in runs:
                    s = r["scores"][key]["weighted"] if lang == "weighted" else r["scores"][key]["languages"].get(lang)
                    if s and s.get("samples"):
                        acc.append(100 * s["accuracy_ci"])
                        ned.append(100 * s["one_minus_ned_ci"])
                row.append(cell(acc, ned))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="data and checkpoints (OUTSIDE the repository)")
    ap.add_argument("--realdev", type=Path, required=True, help="output of benchmarks/make_realdev.py")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--scale", type=float, default=0.2)
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"--variants: unknown variant {v!r}; known: {', '.join(VARIANTS)}")
    out_dir = HERE / "runs"
    out_dir.mkdir(exist_ok=True)
    roots = {v: make_data(args.work, v, args.scale) for v in dict.fromkeys(["today", *variants])}
    for seed in (int(s) for s in args.seeds.split(",")):
        for variant in variants:
            out = out_dir / f"{variant}-s{seed}-n{args.iters}.json"
            if out.is_file():
                continue
            ckpt, wall = train_run(args.work, variant, seed, args.iters, roots[variant])
            scores = {"today": score(ckpt, roots["today"]), "own": score(ckpt, roots[variant]),
                      "realdev": score(ckpt, args.realdev)}
            style, font_set = VARIANTS[variant]
            rec = {"variant": variant, "style": style, "font_set": font_set, "seed": seed, "iters": args.iters,
                   "scale": args.scale, "train_seconds_this_session": round(wall, 1), "scores": scores}
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(rec, indent=1))
            tmp.replace(out)
            print(f"{variant} seed {seed}: LAT real {100 * scores['realdev']['languages']['LAT']['accuracy_ci']:.1f}"
                  f" synth {100 * scores['today']['languages']['LAT']['accuracy_ci']:.1f}", flush=True)
    results = [json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json"))]
    text = "".join(table(results, n) + "\n" for n in sorted({r["iters"] for r in results}))
    (HERE / "ablation.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
