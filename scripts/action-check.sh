#!/usr/bin/env bash
# The GitHub Action's check step. Inputs come only from the environment, never from text
# pasted into the script, so a branch name or an input cannot inject commands:
#   INPUT_BASE, INPUT_CONFIG   one value each
#   INPUT_PATHS                globs, separated by spaces or newlines
#   INPUT_ARGS                 extra arguments for `imagegate check`, one per line, passed
#                              as they are (no word splitting, no globbing, no quotes to mind)
#   INPUT_UNDECIDED            error (default) or warn: passed as --undecided, which decides
#                              both the exit code and whether annotations are errors or warnings
#   INPUT_FAIL_ON_UNDECIDED    deprecated: "false" means --undecided warn
#   INPUT_SARIF                "true": also write a SARIF report for code scanning
#   INPUT_RENDER               "true": --render, the real `kustomize build` and `helm template` as well
# imagegate prints the annotations itself (GITHUB_ACTIONS=true makes `github` the stdout
# format), appends a summary to $GITHUB_STEP_SUMMARY, and announces a run that could not
# happen (exit 2) with an ::error annotation and a summary. Reports go to a directory of
# their own under RUNNER_TEMP, so two runs in one job do not clash.
# Outputs: exit-code, references, errors, undecided, report, sarif.
set -uo pipefail

bin=${IMAGEGATE_BIN:-imagegate}

if [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
  echo "::notice title=imagegate::the checkout is shallow; imagegate fetches the history it needs (set 'fetch-depth: 0' on actions/checkout to skip that)"
fi

args=(check)
if [ -n "${INPUT_BASE:-}" ]; then args+=(--base "$INPUT_BASE"); fi
if [ -n "${INPUT_CONFIG:-}" ]; then args+=(--config "$INPUT_CONFIG"); fi
read -r -d '' -a paths <<<"${INPUT_PATHS:-}" || true
for p in ${paths[@]+"${paths[@]}"}; do args+=(--include "$p"); done

undecided=${INPUT_UNDECIDED:-}
if [ -z "$undecided" ] && [ "${INPUT_FAIL_ON_UNDECIDED:-true}" = false ]; then undecided=warn; fi
case "$undecided" in
  "") ;;
  error | warn) args+=(--undecided "$undecided") ;;
  *)
    echo "::error title=imagegate::input 'undecided' must be error or warn, not '$undecided'"
    exit 2
    ;;
esac

case "${INPUT_RENDER:-false}" in
  true) args+=(--render) ;;
  false | "") ;;
  *)
    echo "::error title=imagegate::input 'render' must be true or false, not '$INPUT_RENDER'"
    exit 2
    ;;
esac

while IFS= read -r line || [ -n "$line" ]; do
  line=${line%$'\r'}
  if [ -n "${line//[[:space:]]/}" ]; then args+=("$line"); fi
done <<<"${INPUT_ARGS:-}"

# Git Bash on Windows runners: bash works with POSIX paths, imagegate.exe with Windows ones.
posix() { if command -v cygpath >/dev/null 2>&1; then cygpath -u "$1"; else printf '%s\n' "$1"; fi; }
native() { if command -v cygpath >/dev/null 2>&1; then cygpath -w "$1"; else printf '%s\n' "$1"; fi; }

dir=$(mktemp -d "$(posix "${RUNNER_TEMP:-${TMPDIR:-/tmp}}")/imagegate-XXXXXX")
report="$dir/report.json"
args+=(--report "json=$(native "$report")")
sarif=""
if [ "${INPUT_SARIF:-false}" = true ]; then
  sarif="$dir/imagegate.sarif"
  args+=(--report "sarif=$(native "$sarif")")
fi

"$bin" "${args[@]}"
code=$?

field() { # a number from the report's summary (the only object with these keys)
  local v
  v=$(grep -o "\"$1\": [0-9][0-9]*" "$report" 2>/dev/null | tail -n 1 | grep -o '[0-9]*$')
  echo "${v:-0}"
}
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "exit-code=$code"
    echo "references=$(field references)"
    echo "errors=$(field errors)"
    echo "undecided=$(field undecided)"
    echo "report=$(native "$report")"
    if [ -n "$sarif" ]; then echo "sarif=$(native "$sarif")"; else echo "sarif="; fi
  } >>"$GITHUB_OUTPUT"
fi

# imagegate announces its own failures; this is for when it did not get that far.
if [ ! -s "$report" ] && [ "$code" != 0 ]; then
  echo "::error title=imagegate::imagegate did not run (exit $code); see the log above"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    printf '### imagegate: ❌ did not run (exit %s)\n\nSee the step log.\n' "$code" >>"$GITHUB_STEP_SUMMARY"
  fi
fi
exit "$code"
