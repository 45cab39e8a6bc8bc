#!/usr/bin/env bash
# Continue benchmark v2's compute on this machine from what is committed, with one worker per core,
# saving and committing finished work every ~20 min (see README.md "Running it"):
#
#   TASKSCOUT_HOME=/some/dir nohup benchmarks/run_v2.sh > v2.log 2>&1 &
#
# Both workers first share the transfer runs (each claims a source and does all its seeds and targets,
# so a source model is trained once per machine), then evaluate the source models whose held-out score
# is missing (sources finished on a machine before that was recorded). Then worker a builds the pool
# entries the shipped pool needs for the catalog tasks outside the benchmark (esm, textemb, vocab; a
# no-op once they are in benchmarks/pool-v2), and each worker the TuPaTE entries of half of the 40
# benchmark sources. Every step skips what is done, so the script can be killed at any time and started
# again, here or on another machine after a `git pull`.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TASKSCOUT_HOME:?set TASKSCOUT_HOME to a directory for models, tasks and the runs database}"
export TASKSCOUT_HOME
TS=${TASKSCOUT:-.venv/bin/taskscout}
POOL=${POOL:-$TASKSCOUT_HOME/pools/v2}
GT=src/taskscout/benchmark_data/v2
LOGS=${LOGS:-$TASKSCOUT_HOME/logs}
EVERY=${EVERY:-1200}
mkdir -p "$LOGS"

"$TS" transfer --benchmark --protocol v2 --restore "$GT.runs.csv" --export-only --export "$GT.json"
if [ ! -d "$POOL" ]; then
    mkdir -p "$(dirname "$POOL")"
    cp -a benchmarks/pool-v2 "$POOL"
fi
read -r -a SOURCES <<< "$(.venv/bin/python -c "from taskscout.evaluate.suites import get_suite; print(*get_suite('v2').sources)")"
HALF=$(( ${#SOURCES[@]} / 2 ))
TUPATE=(-m tupate-bitfit -m tupate-lora -m tupate-prefix)

runs() {  # transfer runs until none is left, then the source models without a held-out score
    OMP_NUM_THREADS=1 "$TS" transfer --benchmark --protocol v2
    OMP_NUM_THREADS=1 "$TS" transfer --benchmark --protocol v2 --source-models
}
build() { OMP_NUM_THREADS=1 "$TS" pool build --pool "$POOL" "$@"; }
{
    runs
    build --all-catalog -m esm-logme -m textemb -m vocab-overlap
    build "${SOURCES[@]:0:$HALF}" "${TUPATE[@]}"
} > "$LOGS/worker-a.log" 2>&1 &
A=$!
sleep 60  # let a claim its first source before b plans
{
    runs
    build "${SOURCES[@]:$HALF}" "${TUPATE[@]}"
} > "$LOGS/worker-b.log" 2>&1 &
B=$!
trap 'pkill -P $A; pkill -P $B; kill $A $B 2>/dev/null || true' INT TERM

while kill -0 "$A" 2>/dev/null || kill -0 "$B" 2>/dev/null; do
    sleep "$EVERY" &
    wait $! || true
    echo "$(date -u +%FT%H:%M) checkpoint"
    benchmarks/checkpoint_v2.sh --commit || echo "checkpoint failed; the workers go on"
done
benchmarks/checkpoint_v2.sh --commit
echo "$(date -u +%FT%H:%M) compute done; scoring every method (benchmarks/finish_v2.sh)"
benchmarks/finish_v2.sh > "$LOGS/finish.log" 2>&1 || { echo "finish_v2.sh failed: see $LOGS/finish.log"; exit 1; }
git add benchmarks/results-v2/scores.json
git commit -q -m "benchmark v2: TuPaTE rankings" || echo "nothing new to commit"
echo "$(date -u +%FT%H:%M) done: report in benchmarks/results-v2; next, benchmarks/README.md 'Finishing v2'"
