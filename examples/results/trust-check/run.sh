#!/bin/bash
# Trust check (issue #21, point 3): ku21fan/CLL-STR's own train.py and `cllstr train` on the same LMDBs, model,
# batch, iterations, schedule, charset and seed, on CPU; then compare.py puts both validation curves and wall times
# in one table. The reference is run unmodified except for two lines that assume a GPU (patched in a copy below).
#
#   REF=/work/ref/CLL-STR     export of github:ku21fan/CLL-STR (git --git-dir=<mirror> archive HEAD | tar -x -C $REF)
#   DATA=/work/runs/data/mlt02   a cllstr mlt19-mini tree (cllstr synth --profile mlt19-mini --scale 0.2 --out $DATA)
#   TV=<torchvision release of the installed torch>   (the reference imports torchvision.transforms)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REF=${REF:-/work/ref/CLL-STR}; DATA=${DATA:-/work/runs/data/mlt02}; OUT=${OUT:-/work/runs/trust}
N=${N:-600}; B=${B:-64}; VAL=${VAL:-100}; SEED=${SEED:-21}; THREADS=${THREADS:-2}; SELECT=${SELECT:-lang_L}
# --reference-charset: the reference class table ([PAD] [UNK] space first), unknown characters train as [UNK] as in
# the reference; REFCS= reproduces session 7's runs (unknown characters dropped from the targets)
REFCS=${REFCS---reference-charset}
# the reference's CRNN exactly: its last convolution unpadded (T = 24; cllstr's default pads it, T = 26);
# ARCH= trains cllstr's default T = 26 instead
ARCH=${ARCH---set model_kwargs.last_pad=0}
PY=${PY:-/work/main/.venv/bin/python}; CLLSTR=${CLLSTR:-/work/main/.venv/bin/cllstr}
SITE=${SITE:-$OUT/site}  # the reference's extra dependencies, kept out of the project's venv
mkdir -p "$OUT"
if [ ! -d "$SITE/natsort" ]; then
  $PY -m pip install -q --target "$SITE" natsort nltk fire tqdm opencv-python-headless zhconv tensorboard
  $PY -m pip install -q --target "$SITE" --no-deps timm "torchvision==${TV:?set TV to the torchvision release matching torch}"
fi
rm -rf "$OUT/ref" && cp -r "$REF" "$OUT/ref" && cd "$OUT/ref"
# CPU: train.py asks CUDA for the device name and reads CUDA_VISIBLE_DEVICES unconditionally
sed -i 's/opt.gpu_name = "_".join(torch.cuda.get_device_name().split())/opt.gpu_name = "_".join(torch.cuda.get_device_name().split()) if torch.cuda.is_available() else "cpu"/' train.py
sed -i 's/opt.CUDA_VISIBLE_DEVICES = os.environ\["CUDA_VISIBLE_DEVICES"\]/opt.CUDA_VISIBLE_DEVICES = os.environ.get("CUDA_VISIBLE_DEVICES", "")/' train.py
# current torch: torch._utils._accumulate is gone (it was itertools.accumulate)
sed -i 's/^from torch\._utils import _accumulate/from itertools import accumulate as _accumulate/' dataset.py
# current torch: DataLoader iterators have no .next() method any more (next(it) is the same call)
sed -i 's/train_loader_iter\.next()/next(train_loader_iter)/' train.py
T0=$(date +%s)
PYTHONPATH="$SITE" OMP_NUM_THREADS=$THREADS $PY train.py --model_name CRNN --exp_name trust --select_data $SELECT \
  --train_data "$DATA/training" --valid_data "$DATA/validation" --eval_data "$DATA/evaluation" \
  --batch_size $B --num_iter $N --val_interval $VAL --workers 0 --manual_seed $SEED > "$OUT/ref.log" 2>&1
T1=$(date +%s)
# cllstr: the reference's CRNN (VGG 512 with BatchNorm on conv 5-6, BiLSTM 256), AdamW 1e-3, OneCycle (div 20,
# final 1000, 30% warm-up), clip 5, the reference's MLT19 charset, fp32 as the reference
$CLLSTR train -m crnn -d "$DATA" -s $SELECT -b $B -n $N --val-interval $VAL --lr 1e-3 --seed $SEED \
  --threads $THREADS --device cpu --precision fp32 --charset "$OUT/ref/charset/MLT19_charset.txt" $REFCS $ARCH \
  -o "$OUT/cllstr" -q > "$OUT/cllstr.log" 2>&1
T2=$(date +%s)
echo "reference_seconds $((T1-T0)) cllstr_seconds $((T2-T1))" | tee "$OUT/wall.txt"
$PY "$HERE/compare.py" "$OUT/ref/saved_models/trust/log_train.txt" "$OUT/cllstr/log.jsonl" \
  --wall "$OUT/wall.txt" | tee "$OUT/trust.md"
