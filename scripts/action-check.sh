#!/usr/bin/env bash
# The GitHub Action's check step. Inputs come only from the environment (INPUT_BASE,
# INPUT_PATHS, INPUT_CONFIG, INPUT_ARGS, INPUT_FAIL_ON_UNDECIDED), never from text pasted
# into the script, so a branch name or an input cannot inject commands. imagegate itself
# prints the annotations (GITHUB_ACTIONS=true makes `github` the stdout format) and appends a
# Markdown summary to $GITHUB_STEP_SUMMARY. Outputs: exit-code, references, errors, undecided.
set -uo pipefail

bin=${IMAGEGATE_BIN:-imagegate}

if [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
  echo "::warning title=imagegate::the checkout is shallow; set 'fetch-depth: 0' on actions/checkout. imagegate will try to fetch the history it needs."
fi

args=(check)
if [ -n "${INPUT_BASE:-}" ]; then args+=(--base "$INPUT_BASE"); fi
if [ -n "${INPUT_CONFIG:-}" ]; then args+=(--config "$INPUT_CONFIG"); fi
read -r -a paths <<<"${INPUT_PATHS:-}"
for p in "${paths[@]}"; do args+=(--include "$p"); done
read -r -a extra <<<"${INPUT_ARGS:-}"

report="${RUNNER_TEMP:-/tmp}/imagegate-report.json"
"$bin" "${args[@]}" "${extra[@]}" --report "json=$report"
code=$?

count() { # summary field of the JSON report
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"][sys.argv[2]])' "$report" "$1" 2>/dev/null || echo 0
}
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "exit-code=$code"
    echo "references=$(count references)"
    echo "errors=$(count errors)"
    echo "undecided=$(count undecided)"
  } >>"$GITHUB_OUTPUT"
fi

if [ "$code" = 3 ] && [ "${INPUT_FAIL_ON_UNDECIDED:-true}" = false ]; then
  echo "::warning title=imagegate::some references could not be decided; passing because fail-on-undecided is false"
  exit 0
fi
exit "$code"
