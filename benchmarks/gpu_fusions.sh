#!/usr/bin/env bash
# SARDINet vs its DEM fusions (late, early, intermediate) x seeds on a packed subset of a patch store
# (benchmarks/pack_store.py), through the CLI: every run trains at once on one GPU, then each model is
# evaluated on the test split and Table 1 is written. Written for the lent H200 (docs/gpu/h200.md), where
# the wheels zarr needs are installed first; runs anywhere with the project importable (DEVICE=cpu and
# small EPOCHS/SAMPLES for a dry run).
#
#   CHUNKS="/tmp/chunks/*.npz" OUT=/tmp/out bash benchmarks/gpu_fusions.sh
#
# Results in $OUT: table.md, table.csv, paired.csv, runs.tar.gz (each run's training log, metrics.csv,
# per-image test metrics), log.txt.
set -uo pipefail
OUT=${OUT:?set OUT}
CHUNKS=${CHUNKS:-/tmp/chunks/*.npz}
WORK=${WORK:-/tmp/fusions}
DEVICE=${DEVICE:-cuda}
MODELS=${MODELS:-"sardinet sardinet_late sardinet_early sardinet_intermediate"}
SEEDS=${SEEDS:-"0 1 2"}
EPOCHS=${EPOCHS:-10}
SAMPLES=${SAMPLES:-3072}
CROP=${CROP:-128}
BATCH=${BATCH:-64}
LR=${LR:-2.0e-4}
TRAIN_LIMIT_S=${TRAIN_LIMIT_S:-420}
PY=${PY:-python3}
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/log.txt"; }

mkdir -p "$OUT" "$WORK"
log "unpacking $(ls $CHUNKS | wc -l) chunks"
$PY benchmarks/pack_store.py unpack --chunks $CHUNKS --out "$WORK/dataset" 2>&1 | tee -a "$OUT/log.txt" || exit 1
training=$(printf '{"deterministic": false, "sardinet": {"epochs": %d, "batch_size": %d, "lr": %s, "crop": %d, "samples_per_epoch": %d}}' \
  "$EPOCHS" "$BATCH" "$LR" "$CROP" "$SAMPLES")
log "training: $training, $DEVICE, limit ${TRAIN_LIMIT_S} s"
runs=() pids=()
for model in $MODELS; do
  amp=--amp
  [ "$model" = sardinet_intermediate ] && amp=--no-amp  # bf16 slows it on the H200 (docs/gpu/h200.md)
  for seed in $SEEDS; do
    run="$WORK/runs/$model/seed$seed"
    mkdir -p "$run"
    # resumes from $run/train_state/last.pt when an earlier call stopped it at the limit
    timeout "$TRAIN_LIMIT_S" $PY -m pipeline train --model "$model" --seed "$seed" --dataset "$WORK/dataset" \
      --out "$run" --params "$training" --device "$DEVICE" --threads 1 $amp --no-tensorboard >"$run/train.log" 2>&1 &
    runs+=("$model/seed$seed") pids+=($!)
  done
done
metrics=() fids=()
for k in "${!runs[@]}"; do
  wait "${pids[$k]}"
  status=$?
  run="$WORK/runs/${runs[$k]}" scores="$WORK/eval/${runs[$k]}"
  if [ "$status" = 124 ] && [ -f "$run/train_state/best.pt" ]; then  # stopped by the limit
    cp "$run/train_state/best.pt" "$run/model.pt"; cp "$run/train_state/metrics.csv" "$run/metrics.csv"
    log "${runs[$k]}: stopped at the limit, its best epoch so far kept"
  elif [ "$status" != 0 ]; then
    log "${runs[$k]}: training failed ($status)"; tail -n 5 "$run/train.log" | tee -a "$OUT/log.txt"; continue
  fi
  tail -n 1 "$run/train.log" | tee -a "$OUT/log.txt"
  $PY -m pipeline evaluate-model --dataset "$WORK/dataset" --model "$run/model.pt" --out "$scores" \
    --params '{"fid_weights": "none"}' --device "$DEVICE" >"$run/evaluate.log" 2>&1 &
  metrics+=("$scores/metrics.parquet") fids+=("$scores/fid.json")
done
wait
log "evaluation done"
$PY -m pipeline evaluation-table --metrics "${metrics[@]}" --fid "${fids[@]}" --params '{"fid_weights": "none"}' \
  --out-csv "$OUT/table.csv" --out-md "$OUT/table.md" --out-paired "$OUT/paired.csv" 2>&1 | tail -n 3 | tee -a "$OUT/log.txt"
tar -czf "$OUT/runs.tar.gz" -C "$WORK" --exclude='*.pt' --exclude='predictions.zarr' runs eval dataset/index.parquet
log "done"
