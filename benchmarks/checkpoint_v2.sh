#!/usr/bin/env bash
# Save what the benchmark v2 workers have finished so far, so a machine that goes away loses nothing
# but the runs in flight (see README.md "Running it"). Safe to run at any time, beside the workers.
#
#   TASKSCOUT_HOME=... benchmarks/checkpoint_v2.sh [--commit]
#
# 1. aggregates the finished transfer runs into src/taskscout/benchmark_data/v2.{json,runs.csv};
# 2. adds pool entries for the source models this machine holds (trains nothing), then scores the
#    source-model methods for them: they need the fine-tuned models at P2, which exist only here, so
#    their per-source scores are stored now (benchmarks/results-v2/scores.json) and reused later
#    (a report of what is there so far: $TASKSCOUT_HOME/report-v2-partial/report.html);
# 3. copies the pool to benchmarks/pool-v2 (the pool every v2 ranking is computed from);
# 4. with --commit, commits the three.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TASKSCOUT_HOME:?set TASKSCOUT_HOME to the directory the workers use}"
TS=${TASKSCOUT:-.venv/bin/taskscout}
POOL=${POOL:-$TASKSCOUT_HOME/pools/v2}
GT=src/taskscout/benchmark_data/v2
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # the workers hold the cores

"$TS" transfer --benchmark --protocol v2 --export "$GT.json" --export-only
SOURCES=$(.venv/bin/python -c "from taskscout.evaluate.suites import get_suite; print(*get_suite('v2').sources)")
# shellcheck disable=SC2086  # one word per source
"$TS" pool build $SOURCES --pool "$POOL" --trained-only \
    -m esm-logme -m textemb -m vocab-overlap -m esm-sgd-logme -m esm-mlp-logme -m taskemb -m curvegrad \
    -m logme-full | grep -v skipped || true
# The rankings go to the committed scores.json; the partial report beside the workers' files.
"$TS" bench --protocol v2 --pool "$POOL" --scores benchmarks/results-v2/scores.json \
    --out "$TASKSCOUT_HOME/report-v2-partial" -m logme-full -m leep -m nce -m hscore -m hscore-reg -m frozen
# Under the pool's writer lock (an flock, as taskscout takes it): no entry is half-published meanwhile.
rm -rf benchmarks/pool-v2.new
flock "$POOL/.lock" cp -a "$POOL" benchmarks/pool-v2.new
rm -rf benchmarks/pool-v2.new/.staging benchmarks/pool-v2.new/.lock benchmarks/pool-v2
mv benchmarks/pool-v2.new benchmarks/pool-v2
if [ "${1:-}" = "--commit" ]; then
    git add "$GT.json" "$GT.runs.csv" "$GT.sources.csv" benchmarks/results-v2/scores.json benchmarks/pool-v2
    git commit -q -m "benchmark v2: runs, pool and source-model scores so far" || echo "nothing new to commit"
fi
