#!/usr/bin/env bash
# Plans every example and invalid fixture against the embedded simulator in text (plain and
# coloured through a pseudo-terminal), JSON and Markdown, writing exit code, stdout and stderr
# of each run under OUT. Run it before and after a change that must not alter any rendering,
# then `diff -r BEFORE AFTER`.
#
#   scripts/plan-outputs.sh OUT [BIN]    (BIN defaults to target/debug/sextant)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$1
bin=$(realpath "${2:-$root/target/debug/sextant}")
mkdir -p "$out"

cases=(examples/quickstart examples/gitops/envs/prod examples/gitops/envs/staging
    examples/gitops/rendered/prod.yaml examples/gitops/rendered/staging.yaml)
for fixture in "$root"/tests/fixtures/invalid/*; do
    cases+=("tests/fixtures/invalid/$(basename "$fixture")")
done

for case in "${cases[@]}"; do
    name=${case//\//_}
    for format in text json markdown tty; do
        work=$(mktemp -d)
        mkdir -p "$work/tests"
        cp -r "$root/examples" "$work/"
        cp -r "$root/tests/fixtures" "$work/tests/"
        file="$out/$name.$format"
        if [ "$format" = tty ]; then
            # `script` gives the binary a terminal, so colours are on; it merges the streams.
            (cd "$work" && env -u NO_COLOR TERM=xterm script -qec \
                "$bin plan --sim $case" /dev/null >"$file" 2>&1) && code=0 || code=$?
        else
            (cd "$work" && NO_COLOR=1 "$bin" plan --sim --format "$format" "$case" \
                >"$file" 2>"$file.stderr") && code=0 || code=$?
            sed -i "s#$work#[TMP]#g" "$file.stderr"
        fi
        sed -i "s#$work#[TMP]#g" "$file"
        echo "$code" >"$file.code"
        rm -rf "$work"
    done
done
echo "$(ls "$out" | wc -l) files in $out"
