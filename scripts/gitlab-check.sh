#!/bin/sh
# The GitLab CI job's script (.gitlab-ci-template.yml holds the same text; a test checks
# they agree). POSIX sh, for the small image, which has no bash. It picks the base the
# pipeline compares with, says why, and runs `imagegate check` with GitLab's reports.
#
#   merged results pipeline   CI_MERGE_REQUEST_TARGET_BRANCH_SHA (HEAD is the merge of the
#                             merge request into that commit)
#   merge request pipeline    CI_MERGE_REQUEST_DIFF_BASE_SHA, else origin/<target branch>
#   branch pipeline           CI_COMMIT_BEFORE_SHA, the tip before the push; for a new
#                             branch, its merge base with origin/<default branch>
#   anything else             IMAGEGATE_BASE, or IMAGEGATE_ALL=true for every reference;
#                             without either the job stops with exit 2 and says so
#
# Credentials: imagegate reads DOCKER_AUTH_CONFIG, an existing ~/.docker/config.json and
# CI_REGISTRY_USER/CI_REGISTRY_PASSWORD (or CI_JOB_TOKEN) itself; nothing is written here.
# IMAGEGATE_ARGS holds extra arguments, one per line. IMAGEGATE_UNDECIDED (error or warn) is
# read by imagegate.
set -eu

zero=0000000000000000000000000000000000000000
before=${CI_COMMIT_BEFORE_SHA:-}
[ "$before" != "$zero" ] || before=""

set -- check
if [ "${IMAGEGATE_ALL:-}" = true ]; then
  set -- "$@" --all
  why="IMAGEGATE_ALL=true: every reference"
elif [ -n "${IMAGEGATE_BASE:-}" ]; then
  set -- "$@" --base "$IMAGEGATE_BASE"
  why="IMAGEGATE_BASE ($IMAGEGATE_BASE)"
elif [ -n "${CI_MERGE_REQUEST_TARGET_BRANCH_SHA:-}" ]; then
  set -- "$@" --base "$CI_MERGE_REQUEST_TARGET_BRANCH_SHA"
  why="merged results pipeline: the target branch's tip CI_MERGE_REQUEST_TARGET_BRANCH_SHA ($CI_MERGE_REQUEST_TARGET_BRANCH_SHA)"
elif [ -n "${CI_MERGE_REQUEST_DIFF_BASE_SHA:-}" ]; then
  set -- "$@" --base "$CI_MERGE_REQUEST_DIFF_BASE_SHA"
  why="merge request pipeline: CI_MERGE_REQUEST_DIFF_BASE_SHA ($CI_MERGE_REQUEST_DIFF_BASE_SHA)"
elif [ -n "${CI_MERGE_REQUEST_TARGET_BRANCH_NAME:-}" ]; then
  set -- "$@" --base "origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
  why="merge request pipeline: the target branch origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"
elif [ -n "$before" ]; then
  set -- "$@" --base "$before"
  why="branch pipeline: the tip before the push, CI_COMMIT_BEFORE_SHA ($before)"
elif [ -n "${CI_COMMIT_BRANCH:-}" ] && [ -n "${CI_DEFAULT_BRANCH:-}" ] && [ "$CI_COMMIT_BRANCH" != "$CI_DEFAULT_BRANCH" ]; then
  set -- "$@" --base "origin/$CI_DEFAULT_BRANCH"
  why="new branch $CI_COMMIT_BRANCH: its merge base with origin/$CI_DEFAULT_BRANCH"
else
  echo "imagegate: no base to compare with: this is neither a merge request pipeline nor a push to a branch other than the default branch with a previous tip (CI_COMMIT_BEFORE_SHA is '${CI_COMMIT_BEFORE_SHA:-}'; a scheduled, web or API pipeline, or the first push of the default branch)." >&2
  echo "imagegate: set IMAGEGATE_BASE to a revision to compare with, or IMAGEGATE_ALL=true to check every reference." >&2
  exit 2
fi
echo "imagegate: $why"

set -- "$@" --report gitlab=gl-code-quality-report.json --report junit=imagegate-junit.xml
set -f
old_ifs=$IFS
IFS='
'
for arg in ${IMAGEGATE_ARGS:-}; do
  set -- "$@" "$arg"
done
IFS=$old_ifs
set +f

exec "${IMAGEGATE_BIN:-imagegate}" "$@"
