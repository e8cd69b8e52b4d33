#!/usr/bin/env bash
# One session on a lent GPU (the `device` tool: about 15 minutes of device time in all):
# the fused engine against one run on the card, then a whole Table 1 column trained and evaluated
# with hydra/launcher=fused.
#
#   bash benchmarks/gpu_session.sh --prepare           # here: wheels and data into .device/ (git-ignored)
#   run(command="bash benchmarks/gpu_session.sh mnist", carry=[".device"], timeout_s=600)
#   ACCELERATOR=cpu bash benchmarks/gpu_session.sh mnist trainer.max_epochs=1 trainer.limit_train_batches=2
#                                                        # a dry run of stage 2 here (no stage 1)
#
# The device has torch, lightning and torchmetrics, but no hydra-core, omegaconf or wandb and no
# internet: the carried pure-Python wheels are installed, the data unpacked, W&B left out
# (logger=csv). Then:
#   1. python benchmarks/fused.py --device cuda --epochs 100   (the 22-member group against one run,
#      the engine's way and the prototype with its layers as CUDA graphs: --layers default graphed)
#      and again with --precision bf16 (bf16 autocast for the layers: one run and the fused group, the
#      engine's way), and --evaluation (log p(x)'s decode for 22 members: one by one, as a group
#      evaluates, or vmapped)
#   2. the dataset's Table 1 column at budget=cpu (18 epochs), fused: two groups of 11 side by side
#      (hydra.launcher.n_jobs=2), each member evaluated after its group trained (evaluate=true,
#      log p(x) under both likelihoods), no pictures while training;
# each stage under its own time limit, so that what finished comes back. $OUT receives the JSON of
# stage 1, the sweep's run folders without checkpoints (config.yaml, status.json, metrics.csv,
# results.json, eval.json, logs; folders named by job number), the sweep's log and the wall times
# (times.txt: epoch seconds of each stage's end); the reports are made here:
#   python evaluate.py report=table1 sweep_dir=<files_at>/sweep     (fig3, fig5 likewise)
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=.device
if [[ "${1:-}" == "--prepare" ]]; then
  set -e
  mkdir -p "$CARRY/wheels" "$CARRY/data"
  python3 -m pip download --quiet --no-deps -d "$CARRY/wheels" \
    hydra-core==1.3.8 omegaconf==2.3.1 hydra-joblib-launcher==1.2.0 joblib==1.6.0
  python3 -m pip wheel --quiet --no-deps -w "$CARRY/wheels" antlr4-python3-runtime==4.9.3
  source_data="${VAE_GJS_DATA_DIR:-../shared/data}"
  for folder in MNIST FashionMNIST; do
    mkdir -p "$CARRY/data/$folder/raw"
    for file in "$source_data/$folder/raw/"*-ubyte; do
      gzip -c "$file" > "$CARRY/data/$folder/raw/$(basename "$file").gz"
    done
  done
  du -sh "$CARRY"
  exit 0
fi

DATASET="${1:-mnist}"
shift || true  # the rest: extra overrides of the column's command
ACCELERATOR="${ACCELERATOR:-gpu}"
OUT="${OUT:-/tmp/gpu_session_out}"
WORK="$(mktemp -d)"
mkdir -p "$OUT"
export VAE_GJS_DATA_DIR="$WORK/data" PYTHONPATH="$PWD/src" WANDB_MODE=disabled
stamp() { echo "$(date +%s) $*" >> "$OUT/times.txt"; echo "== $*"; }

bring_back() {  # the sweep's small files (no checkpoints, no pictures) into $OUT
  if [[ -d "$WORK/sweep" ]]; then
    (cd "$WORK" && find sweep \( -name '*.json' -o -name '*.csv' -o -name '*.yaml' -o -name '*.log' \) \
      -not -path '*/checkpoints/*' -print0 | xargs -0 -r cp --parents -t "$OUT")
  fi
  stamp "brought back"
}
trap bring_back EXIT

stamp "start $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
python -m pip install --quiet --no-index --find-links "$CARRY/wheels" \
  hydra-core omegaconf antlr4-python3-runtime hydra-joblib-launcher joblib 2>&1 | tail -2
for folder in MNIST FashionMNIST; do
  mkdir -p "$WORK/data/$folder/raw"
  for file in "$CARRY/data/$folder/raw/"*.gz; do
    gunzip -c "$file" > "$WORK/data/$folder/raw/$(basename "$file" .gz)"
  done
done
python -c "import torch, lightning, hydra; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
stamp "installed"

if [[ "$ACCELERATOR" == "gpu" ]]; then
  timeout 120 python benchmarks/fused.py --device cuda --epochs 100 --rounds 2 --steps 100 --layers default graphed \
    > "$OUT/fused_bench.json" 2> "$OUT/fused_bench.err"
  stamp "benchmark done (exit $?)"
  timeout 90 python benchmarks/fused.py --device cuda --epochs 100 --rounds 2 --steps 100 --precision bf16 \
    > "$OUT/fused_bench_bf16.json" 2> "$OUT/fused_bench_bf16.err"
  stamp "bf16 benchmark done (exit $?)"
  timeout 60 python benchmarks/fused.py --device cuda --evaluation --rounds 3 \
    > "$OUT/fused_eval_decode.json" 2> "$OUT/fused_eval_decode.err"
  stamp "evaluation decode done (exit $?)"
fi

timeout "${COLUMN_SECONDS:-270}" python train.py -m +experiment=table1 dataset="$DATASET" budget=cpu \
  hydra/launcher=fused hydra.launcher.n_jobs=2 hydra.launcher.max_models=11 \
  trainer.accelerator="$ACCELERATOR" threads=4 logger=csv images_every_n_epochs=null eval.figures=false \
  hydra.sweep.dir="$WORK/sweep" \
  'hydra.sweep.subdir=${hydra.job.num}' "$@" \
  > "$OUT/sweep.log" 2>&1
stamp "column done (exit $?)"
