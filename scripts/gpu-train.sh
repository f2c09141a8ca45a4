#!/usr/bin/env bash
# Trains recipes side by side on a lent GPU machine (docs/training.md, "Training on a GPU").
# Runs THERE, in the repository root, on the folder .gpu/ that scripts/gpu-pack.sh made HERE:
#
#   scripts/gpu-train.sh SECONDS RECIPE[@FEED_THREADS]...
#
# Each recipe first runs a timed `train bench --backend tch-cuda` (all of them at once, as they
# will train); its `steps` is then set so that every fit ends within SECONDS, the copy is
# written to runs/NAME.toml and `train fit --backend tch-cuda` runs on it, all at once. Each
# run leaves $OUT/NAME.tar.xz (run directory and log; `train fit --out DIR --resume` continues
# it on any machine, CPU included) and $OUT/gpu-train.log. A fit still running at SECONDS + 60
# is stopped: its last checkpoint (every train.checkpoint_every steps) is what comes back.
set -u
budget=${1:?usage: scripts/gpu-train.sh SECONDS RECIPE...}
shift
[ $# -gt 0 ] || { echo "no recipe given" >&2; exit 2; }
out=${OUT:-out/gpu}
pack=.gpu
feed_threads=${FEED_THREADS:-3}
backend=${BACKEND:-tch-cuda}   # BACKEND=tch tries the script out on a CPU
mkdir -p "$out" runs
log=$out/gpu-train.log
exec > >(tee "$log") 2>&1
t0=$(date +%s)
since() { echo "[$(( $(date +%s) - t0 )) s]"; }

# LibTorch with CUDA: the machine's PyTorch. The trainer was built against the same version's
# headers (gpu-pack.sh) and links libtorch_cpu; preloading libtorch_cuda registers CUDA with it.
torch_lib=${TORCH_LIB:-$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')} || exit 1
preload=${PRELOAD-$torch_lib/libtorch_cuda.so}   # PRELOAD= (empty) on a machine without CUDA
mkdir -p .deps/onnxruntime/lib .deps/priors .deps/bases checkpoints
xz -dc $pack/train.xz > $pack/train && chmod +x $pack/train
xz -dc $pack/libonnxruntime.so.xz > .deps/onnxruntime/lib/libonnxruntime.so.1
export ORT_DYLIB_PATH=$PWD/.deps/onnxruntime/lib/libonnxruntime.so.1
cp $pack/priors/* .deps/priors/
cp $pack/bases/* .deps/bases/ 2>/dev/null
cp -r $pack/checkpoints/* checkpoints/ 2>/dev/null
rm -rf data && ln -s $pack/data data
nvidia-smi -L 2>/dev/null
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>/dev/null
echo "$(since) setup done; $(nproc --all) cores"

names=(); recipes=(); lanes=(); pids=()
for arg in "$@"; do
    r=${arg%@*}; k=$feed_threads
    [ "$r" != "$arg" ] && k=${arg##*@}
    n=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$r" | head -1)
    names+=("$n"); recipes+=("$r"); lanes+=("$k")
    # A bench that hangs (CUDA not coming up) must not eat the lease: a failed bench skips its fit.
    timeout ${BENCH_TIMEOUT:-150} env LD_PRELOAD="$preload" LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$pack/train" bench --recipe "$r" --backend "$backend" --feed-threads "$k" --steps ${BENCH_STEPS:-60} > "runs/$n.bench" 2>&1 &
    pids+=($!)
done
# Waits for these jobs by pid: a bare `wait` would also wait for the log's tee.
wait "${pids[@]}"; pids=()
for n in "${names[@]}"; do echo "== bench $n"; tail -4 "runs/$n.bench"; done
echo "$(since) benches done"

left=$(( budget - ( $(date +%s) - t0 ) ))
[ "$left" -ge 60 ] || left=60
for i in "${!names[@]}"; do
    n=${names[$i]}; r=${recipes[$i]}
    sps=$(sed -n 's/^steps\/s //p' "runs/$n.bench")
    [ -n "$sps" ] || { echo "bench of $n failed: not training it"; continue; }
    # 85 % of the time left: data loading, validations and the final checkpoint take the rest.
    steps=$(python3 -c "print(max(100, int($sps * $left * 0.85) // 100 * 100))")
    sed "s/^steps = .*/steps = $steps/" "$r" > "runs/$n.toml"
    echo "$n: $sps steps/s in the bench -> steps = $steps"
    timeout $(( left + 60 )) env LD_PRELOAD="$preload" LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$pack/train" fit --recipe "runs/$n.toml" --out "runs/$n" --backend "$backend" \
        --feed-threads "${lanes[$i]}" > "runs/$n.log" 2>&1 &
    pids+=($!)
done
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
echo "$(since) fits done"
for n in "${names[@]}"; do
    echo "== $n"; grep -E "^(validation at|stopped|done:|train: error)" "runs/$n.log" | tail -6
    tail -2 "runs/$n.log"
    [ -d "runs/$n" ] || continue
    XZ_OPT=-1 tar -C runs -cJf "$out/$n.tar.xz" "$n" "$n.log" "$n.bench" "$n.toml"
    # The device tool returns files of at most 16 MiB: a larger archive comes back in parts
    # (`cat NAME.tar.xz.part* | tar -xJ` joins them).
    if [ "$(stat -c %s "$out/$n.tar.xz")" -gt 16000000 ]; then
        split -b 15000000 -d "$out/$n.tar.xz" "$out/$n.tar.xz.part" && rm "$out/$n.tar.xz"
    fi
done
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv 2>/dev/null
echo "$(since) packed"
ls -la "$out"
