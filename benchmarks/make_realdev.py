"""Rebuild the real-photo development set of issue #20 from fetched repository mirrors.

The crops come from public repositories' own demo/test images; ``examples/results/synth-realism/realdev_manifest.csv``
records, for every crop, the repository, the commit, the file path, an optional box ``x0 y0 x1 y1`` (pixels, for
crops cut out of a whole scene photo), the label (read from the file name, the repository's documentation, or by eye
where unambiguous) and whether it is used (``realdev``) or ``excluded`` (with the reason: rendered rather than
photographed, unreadable, rotated...). No image is stored in this repository.

The mirrors are bare git directories (what the session's ``fetch`` tool writes: ``<mirrors>/<owner>+<name>/repo``);
images are read with ``git show <commit>:<path>``. The output is one LMDB per script under ``OUT/evaluation/<SCRIPT>``,
the layout ``cllstr eval CKPT -d OUT`` reads.

    python benchmarks/make_realdev.py --out /work/realdev                 # mirrors under /work/.mirror
    python benchmarks/make_realdev.py --out /work/realdev --sheet sheet.png   # also a contact sheet of the crops
"""

from __future__ import annotations

import argparse
import csv
import io
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from PIL import Image

from cllstr.data import LmdbWriter

MANIFEST = Path(__file__).resolve().parents[1] / "examples" / "results" / "synth-realism" / "realdev_manifest.csv"
FIELDS = ("script", "label", "repo", "commit", "path", "box", "use", "note")


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of the manifest; raises ``ValueError`` naming the file and line of a malformed row."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != FIELDS:
            raise ValueError(f"{path}: header must be {','.join(FIELDS)}, got {reader.fieldnames}")
        rows = list(reader)
    for i, row in enumerate(rows, start=2):
        if row["use"] not in ("realdev", "excluded"):
            raise ValueError(f"{path}:{i}: use must be realdev or excluded, got {row['use']!r}")
        if row["use"] == "realdev" and not row["label"]:
            raise ValueError(f"{path}:{i}: a realdev crop needs a label")
        if row["box"] and len(row["box"].split()) != 4:
            raise ValueError(f"{path}:{i}: box must be 'x0 y0 x1 y1', got {row['box']!r}")
    return rows


def load_crop(mirrors: Path, row: dict[str, str]) -> Image.Image:
    """The row's image from its mirror at its commit, cut to its box."""
    git_dir = mirrors / row["repo"].replace("/", "+") / "repo"
    if not git_dir.is_dir():
        raise FileNotFoundError(f"no mirror of {row['repo']} at {git_dir} (fetch github:{row['repo']} first)")
    blob = subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{row['commit']}:{row['path']}"], capture_output=True, check=False
    )
    if blob.returncode != 0:
        raise FileNotFoundError(f"{row['repo']}@{row['commit'][:10]}:{row['path']}: {blob.stderr.decode().strip()}")
    img = Image.open(io.BytesIO(blob.stdout)).convert("RGB")
    if row["box"]:
        x0, y0, x1, y1 = (int(v) for v in row["box"].split())
        if not (0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height):
            raise ValueError(f"{row['path']}: box {row['box']} outside the {img.width}x{img.height} image")
        img = img.crop((x0, y0, x1, y1))
    return img


def build(mirrors: Path, out: Path, manifest: Path = MANIFEST, sheet: Path | None = None) -> dict[str, int]:
    """Write ``out/evaluation/<SCRIPT>`` LMDBs of the manifest's ``realdev`` crops; returns crops per script."""
    rows = [r for r in read_manifest(manifest) if r["use"] == "realdev"]
    by_script: dict[str, list[tuple[Image.Image, dict[str, str]]]] = defaultdict(list)
    for row in rows:
        by_script[row["script"]].append((load_crop(mirrors, row), row))
    for script, items in sorted(by_script.items()):
        meta = {"source": "benchmarks/make_realdev.py", "script": script, "manifest": manifest.name}
        with LmdbWriter(out / "evaluation" / script, overwrite=True, meta=meta) as w:
            for img, row in items:
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                w.add(buf.getvalue(), row["label"], image_path=f"{row['repo']}@{row['commit'][:10]}:{row['path']}")
    if sheet is not None:
        _sheet([it for items in by_script.values() for it in items], sheet)
    return {k: len(v) for k, v in sorted(by_script.items())}


def _sheet(items: list[tuple[Image.Image, dict[str, str]]], path: Path, h: int = 40) -> None:
    from PIL import ImageDraw

    from cllstr.scripts import get_script
    from cllstr.synth.fonts import load_font
    from cllstr.synth.fontset import resolve_fonts

    rows = []
    for img, row in items:
        crop = img.resize((max(1, min(600, round(img.width * h / img.height))), h))
        face = resolve_fonts(row["script"], "noto").faces[0]
        canvas = Image.new("RGB", (900, h + 6), "white")
        canvas.paste(crop, (0, 3))
        font = load_font(face.path, face.index, 22)
        ImageDraw.Draw(canvas).text((610, 8), row["label"], fill="black", font=font,
                                    language=get_script(row["script"]).fontconfig_lang)
        rows.append(canvas)
    out = Image.new("RGB", (900, sum(r.height for r in rows)), "white")
    for i, r in enumerate(rows):
        out.paste(r, (0, i * (h + 6)))
    out.save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output root (OUTSIDE the repository)")
    ap.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"), help="folder of fetched mirrors")
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--sheet", type=Path, help="also write a contact sheet of the crops with their labels")
    args = ap.parse_args(argv)
    try:
        counts = build(args.mirrors, args.out, args.manifest, args.sheet)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {sum(counts.values())} crops under {args.out}/evaluation: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
