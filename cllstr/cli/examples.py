"""The README's examples, shown in each command's ``--help`` epilog (one home for both)."""

from __future__ import annotations

__all__ = ["EXAMPLES", "epilog"]

#: Command path (without ``cllstr``) to example command lines.
EXAMPLES: dict[str, list[str]] = {
    "demo": ["cllstr demo", "cllstr demo --out demo_svtr --model svtr_tiny --iters 3000 --lr 1e-3"],
    "doctor": ["cllstr doctor"],
    "synth": ["cllstr synth --profile mlt19-mini --scale 0.1 --out data",
              "cllstr synth --scripts KOR,LAT --n 1000 --out kor_lat.lmdb"],
    "synth run": ["cllstr synth run --profile mlt19-mini --scale 0.01 --out data"],
    "synth preview": ["cllstr synth preview --out sheet.png"],
    "synth fonts": ["cllstr synth fonts --scripts ARA,LAT"],
    "data": ["cllstr data create IMAGES_DIR GT.tsv OUT.lmdb", "cllstr data inspect data/training/LAT"],
    "data create": ["cllstr data create IMAGES_DIR GT.tsv OUT.lmdb   # GT.tsv: path<TAB>label lines"],
    "data inspect": ["cllstr data inspect data/training/LAT data/training/KOR"],
    "data validate": ["cllstr data validate data/training/LAT --max-len 25"],
    "data charset": ["cllstr data charset data/training/* -o charset.txt"],
    "train": [
        "cllstr train -m svtr_tiny -d data -s lang_CBHJAKL -b 128 -n 20000 --val-interval 1000 -o runs/joint",
        "cllstr train -m crnn -d data -s SynthMLT_K-lang_K --cap SynthMLT=2000 --init-from runs/lat/best.pt "
        "-o runs/cascade",
        "cllstr train -s lang_CBHJAKL-SynthMLT_L --batch-ratio 0.05-0.05-0.05-0.05-0.05-0.05-0.3-0.4 ...",
        "cllstr train ... --resume   # continue a stopped run exactly",
        "cllstr train ... -b 256 --nproc-per-node 4 --set sync_bn=true   # data-parallel through torchrun",
    ],
    "eval": ["cllstr eval runs/joint/best.pt -d data --md eval.md --json eval.json",
             "cllstr eval runs/joint/best.pt -d data --gallery gallery/   # sheets of the worst errors"],
    "predict": ["cllstr predict -m runs/joint/best.pt img1.jpg img2.png --format json",
                "cllstr predict -m runs/joint/best.pt --folder crops/ -o predictions.tsv",
                "cllstr predict --onnx model.onnx img1.jpg   # onnxruntime, from 'cllstr export'"],
    "import": [
        "cllstr import SVTR_joint_All.pth --from cll-str --arch SVTR --charset charset/MLT19_charset.txt "
        "-o svtr_joint.pt",
        "cllstr import TPS-ResNet-BiLSTM-Attn.pth --from dtrb --arch TPS-ResNet-BiLSTM-Attn -o trba.pt",
        "cllstr import TPS-ResNet-BiLSTM-Attn-case-sensitive.pth --from dtrb --arch TPS-ResNet-BiLSTM-Attn "
        "--sensitive -o trba_cs.pt",
    ],
    "export": ["cllstr export runs/joint/best.pt --onnx model.onnx",
               "cllstr export runs/joint/best.pt --torchscript model.ts",
               "cllstr export runs/joint/best.pt --export model.pt2   # torch.export, dynamic batch",
               "cllstr predict --onnx model.onnx img1.jpg img2.png"],
    "prune": ["cllstr prune runs/grouped/best.pt -o runs/grouped/pruned.pt   # per-head classifiers to their scripts",
              "cllstr eval runs/grouped/pruned.pt -d data"],
    "study": ["cllstr study presets", "cllstr study run --preset cll-joint --scale 0.01 --out studies/joint",
              "cllstr study report studies/joint"],
    "study run": ["cllstr study run --preset cll-joint --scale 0.01 --out studies/joint --seeds 3 --parallel 2",
                  "cllstr study run --preset cll-joint --protocol cpu --seeds 2 --out studies/joint-cpu",
                  "cllstr study run examples/studies/cll-cascade.yaml --out studies/cascade",
                  "cllstr study run --preset cll-joint --out studies/joint --executor ray --address auto "
                  "--gpus-per-run 1",
                  "cllstr study run --preset cll-joint --out studies/joint --results-from exported/joint"],
    "study report": ["cllstr study report studies/joint"],
    "study export": ["cllstr study export studies/joint exported/joint   # results without checkpoints"],
    "study compare": ["cllstr study compare studies/joint-cpu paper",
                      "cllstr study compare studies/joint-cpu studies/joint-gpu"],
    "study presets": ["cllstr study presets"],
    "study protocols": ["cllstr study protocols"],
}


def epilog(command: str) -> str:
    """The ``Examples:`` block of ``command`` (paragraphs, so that help rendering keeps one example per line)."""
    lines = EXAMPLES.get(command)
    if not lines:
        return ""
    return "Examples:\n\n" + "\n\n".join(f"  {line}" for line in lines)
