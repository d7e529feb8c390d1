#!/usr/bin/env bash
# Diff-check scale benchmark (issue 3): a generated repository of FILES YAML manifests
# (default 50,000) with a deep history (default 2,000 commits), and a branch that changes one
# file. Times `imagegate check --offline` on that change beside `git diff --name-only` on the
# same change, in the same run, and prints medians and the ratio.
#
#   benches/diff-scale.sh [FILES] [COMMITS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-50000}
commits=${2:-2000}
runs=${3:-11}
cargo build --release --quiet
bin="$PWD/target/release/imagegate"
work=$(mktemp -d)
# BENCH_KEEP=1 keeps the generated repository for profiling.
if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "keeping $work" >&2; else trap 'rm -rf "$work"' EXIT; fi
repo="$work/repo"
git init -q -b main "$repo"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

python3 - "$files" "$commits" >"$work/stream" <<'PY'
import sys
files, commits = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
def manifest(i, tag):
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app{i}\nspec:\n"
            f"  template:\n    spec:\n      containers:\n        - name: app\n"
            f"          image: ghcr.io/acme/app{i % 500}:{tag}\n").encode()
def blob(mark, data):
    out.write(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")
def commit(n, ops):
    msg = b"commit %d" % n
    out.write(b"commit refs/heads/main\ncommitter T <t@e> %d +0000\ndata %d\n%s\n" % (1700000000 + n, len(msg), msg))
    for path, mark in ops:
        out.write(b"M 100644 :%d %s\n" % (mark, path.encode()))
    out.write(b"\n")
mark = 1
ops = []
for i in range(files):
    blob(mark, manifest(i, "1.0.0"))
    ops.append((f"clusters/c{i % 20}/apps/app{i}/deploy.yaml", mark))
    mark += 1
commit(0, ops)
for n in range(1, commits):
    i = (n * 7919) % files
    blob(mark, manifest(i, f"1.0.{n}"))
    commit(n, [(f"clusters/c{i % 20}/apps/app{i}/deploy.yaml", mark)])
    mark += 1
PY
git -C "$repo" fast-import --quiet <"$work/stream"
git -C "$repo" checkout -q main
git -C "$repo" checkout -q -b feature
target="clusters/c3/apps/app123/deploy.yaml"
sed -i 's/image: \(.*\):.*/image: \1:2.0.0-typo/' "$repo/$target"
git -C "$repo" -c user.name=T -c user.email=t@e commit -q -am "bump one tag"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
cd "$repo"
# A fresh cache directory: the first run below stores the merge base's facts.
export XDG_CACHE_HOME="$work/cache"
# Warm the page cache once for both.
git diff --name-only main...feature >/dev/null
"$bin" check --offline --no-worktree --base main >/dev/null 2>&1 || true
g=$(for _ in $(seq "$runs"); do t git diff --name-only main...feature; done | median)
i=$(for _ in $(seq "$runs"); do t "$bin" check --offline --no-worktree --base main; done | median)
n=$(for _ in $(seq "$runs"); do t "$bin" check --offline --no-worktree --base main --no-cache; done | median)
found=$("$bin" check --offline --no-worktree --base main --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["references"]), d["references"][0]["file"] if d["references"] else "-")')
echo "repository: $files YAML files, $commits commits; change: one file ($target)"
echo "imagegate selected: $found"
echo "git diff --name-only main...feature: median ${g} us over $runs runs"
echo "imagegate check --offline --base main: median ${i} us over $runs runs (merge base's facts stored), ${n} us with --no-cache"
python3 -c "print(f'ratio imagegate / git diff --name-only = {$i/$g:.2f} (stored facts), {$n/$g:.2f} (--no-cache)')"
