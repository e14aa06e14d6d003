#!/bin/sh
# Runs every fuzz target for SECONDS each (make fuzz-short / make fuzz):
# the libFuzzer binaries in build/fuzz/ (made by make) and the atheris
# target. Each starts from a scratch copy of its committed seed corpus in
# tests/fuzz/corpus/, so runs add nothing to the repository; crashes are
# written to build/fuzz/crash-TARGET-*. Prints executions and crashes per
# target; exits non-zero when any target crashed.
#
#   sh tests/fuzz/run.sh SECONDS
set -u
SECONDS_EACH=${1:-25}
PYTHON=${PYTHON:-python3}
OUT=build/fuzz
status=0

run() { # name, seed corpus, command...
    name=$1 seeds=$2
    shift 2
    rm -rf "$OUT/corpus-$name" "$OUT/crash-$name-"*
    mkdir -p "$OUT/corpus-$name"
    cp "$seeds"/* "$OUT/corpus-$name"/
    "$@" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="$OUT/crash-$name-" \
        "$OUT/corpus-$name" >"$OUT/$name.log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$name.log" | tail -1)
    [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$OUT/$name.log" | tail -1)
    crashes=$(ls "$OUT/crash-$name-"* 2>/dev/null | wc -l)
    echo "fuzz $name: ${runs:-?} executions in ${SECONDS_EACH}s, $crashes crashes (exit $rc)"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        status=1
        echo "--- $OUT/$name.log (end) ---"
        grep -v '^"' "$OUT/$name.log" | tail -40
    fi
}

run response tests/fuzz/corpus/response "$OUT/fuzz_response" -max_len=16384
run request tests/fuzz/corpus/request "$OUT/fuzz_request" -max_len=4096
run mask tests/fuzz/corpus/mask "$OUT/fuzz_mask" -max_len=1024
run encode tests/fuzz/corpus/encode "$OUT/fuzz_encode" -max_len=4096
run token tests/fuzz/corpus/token "$OUT/fuzz_token" -max_len=4096
run url tests/fuzz/corpus/url "$OUT/fuzz_url" -max_len=1024
# atheris: the installed genauth_c (or PYTHONPATH's), through a real client.
run convert tests/fuzz/corpus/response "$PYTHON" tests/fuzz/fuzz_convert.py \
    -max_len=16384
exit $status
