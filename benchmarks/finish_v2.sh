#!/usr/bin/env bash
# Score every method on the finished benchmark v2 and write its report (README.md "Finishing v2").
# run_v2.sh calls this once the compute is done; it is safe to run again (stored rankings are reused).
#
#   TASKSCOUT_HOME=/some/dir benchmarks/finish_v2.sh [--readme]
#
# 1. TuPaTE's P2 (tunes each target once per variant, ~1 CPU-hour for 12 targets x 3 variants);
# 2. every stored method plus the fusions chosen before any v2 result (as for small-v1) -> the report
#    in benchmarks/results-v2 (with --readme also README.md's generated block, its prose is by hand,
#    and the packaged benchmark summary src/taskscout/benchmark_data/quality.json);
# 3. the report checked in headless Chromium when it is installed (screenshots in $SHOTS).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${TASKSCOUT_HOME:?set TASKSCOUT_HOME to the directory the workers used}"
export TASKSCOUT_HOME
TS=${TASKSCOUT:-.venv/bin/taskscout}
PY=${PYTHON:-.venv/bin/python}
POOL=${POOL:-$TASKSCOUT_HOME/pools/v2}
OUT=benchmarks/results-v2
SHOTS=${SHOTS:-$TASKSCOUT_HOME/report-shots}

"$TS" bench --protocol v2 --pool "$POOL" --out "$OUT" \
    -m tupate-bitfit -m tupate-lora -m tupate-prefix -m tupate-ensemble
read -r -a STORED <<< "$("$PY" -c "
from taskscout.evaluate.benchmark import ScoreCache
print(' '.join('-m ' + m for m in ScoreCache('$OUT/scores.json').methods()))")"
README=()
if [ "${1:-}" = "--readme" ]; then README=(--readme README.md); fi
"$TS" bench --stored --protocol v2 --out "$OUT" "${STORED[@]}" \
    -m fusion:esm-logme+textemb -m fusion:esm-logme+vocab-overlap -m fusion:esm-logme+datasize \
    -m fusion:textemb+vocab-overlap -m fusion:esm-logme+textemb+vocab-overlap+datasize \
    -m fusion:esm-logme+tupate-ensemble "${README[@]}"
if [ "${1:-}" = "--readme" ]; then
    # v2 becomes the reference benchmark `taskscout rank` and `taskscout methods` quote.
    cp "$OUT/summary.json" src/taskscout/benchmark_data/quality.json
fi
if command -v chromium >/dev/null 2>&1; then
    "$PY" benchmarks/check_report.py "$OUT/report.html" --screenshots "$SHOTS"
else
    echo "Chromium is not installed: report not checked (apt-get install chromium)"
fi
