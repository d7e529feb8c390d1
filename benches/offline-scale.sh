#!/usr/bin/env bash
# Offline scale benchmark (issue 7): a generated repository of FILES manifests (default
# 20,000; three resources each, about 60,000: Deployments, CronJobs, HelmReleases, plus a
# kustomization per app directory). Measures `imagegate check --all --offline` (median of RUNS)
# in MB/s and resources/s with its peak memory, and a one-file change checked offline beside
# `git diff --name-only` for the same change.
#
#   benches/offline-scale.sh [FILES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-20000}
runs=${2:-5}
cargo build --release --quiet
bin="$PWD/target/release/imagegate"
work=$(mktemp -d)
# BENCH_KEEP=1 keeps the generated repository for profiling.
if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "keeping $work" >&2; else trap 'rm -rf "$work"' EXIT; fi
repo="$work/repo"
mkdir -p "$repo"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

python3 - "$repo" "$files" <<'PY'
import os, sys
root, files = sys.argv[1], int(sys.argv[2])
for i in range(files):
    d = os.path.join(root, "apps", f"team{i % 50}", f"app{i}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "resources.yaml"), "w") as f:
        f.write(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{i}
  labels: {{app: app{i}, team: team{i % 50}}}
spec:
  replicas: 2
  template:
    spec:
      initContainers:
        - name: migrate
          image: ghcr.io/acme/app{i % 700}-migrate:1.{i % 40}.0
      containers:
        - name: app
          image: "ghcr.io/acme/app{i % 700}:1.{i % 40}.{i % 7}"
          ports: [{{containerPort: 8080}}]
          env:
            - {{name: MODE, value: production}}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: app{i}-nightly
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - name: job
              image: registry.example.com/jobs/runner:{i % 30}.0
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: app{i}-cache
spec:
  chart:
    spec: {{chart: redis, version: "18.{i % 9}.0", sourceRef: {{kind: HelmRepository, name: bitnami}}}}
  values:
    image:
      registry: docker.io
      repository: bitnami/redis
      tag: "7.{i % 4}"
""")
    with open(os.path.join(d, "kustomization.yaml"), "w") as f:
        f.write("resources:\n  - resources.yaml\nimages:\n  - name: ghcr.io/acme/app%d\n    newTag: \"2.0.%d\"\n" % (i % 700, i % 11))
PY
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c gc.auto=0 -c user.name=T -c user.email=t@e commit -q -m generated
git -C "$repo" gc -q # packed, as a clone is
bytes=$(find "$repo" -path "$repo/.git" -prune -o -type f -printf '%s\n' | awk '{s += $1} END {print s}')
resources=$((files * 3))

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cd "$repo"
"$bin" check --all --offline >/dev/null 2>&1 || true # warm the page cache
times=()
peak=0
for _ in $(seq "$runs"); do
  out=$( { /usr/bin/time -f '%e %M' "$bin" check --all --offline --format json >/dev/null; } 2>&1 | tail -1)
  times+=("${out% *}")
  kb=${out#* }
  [ "$kb" -gt "$peak" ] && peak=$kb
done
t=$(printf '%s\n' "${times[@]}" | median)
echo "repository: $files files, $resources resources, $((bytes / 1048576)) MiB"
echo "imagegate check --all --offline: median ${t} s over $runs runs (both cores, rayon)"
python3 -c "print(f'rate: {$bytes/1048576/$t:.1f} MB/s, {$resources/$t:,.0f} resources/s, {50000*$t/$resources:.2f} s per 50,000 resources')"
echo "peak memory: $((peak / 1024)) MB"

git checkout -q -b change
sed -i 's/tag: "7.\(.\)"/tag: "7.\1-typo"/' apps/team3/app153/resources.yaml
git -c user.name=T -c user.email=t@e commit -q -am "one change"
ns() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
# The merge base's facts are stored in the cache directory: a fresh one here, so the first
# run builds them (cold) and the next ones read them (warm). --no-cache reads every
# kustomization each time, as CI does unless the cache is configured.
export XDG_CACHE_HOME="$work/cache"
cold=$(ns "$bin" check --offline --no-worktree --base main)
g=$(for _ in $(seq 11); do ns git diff --name-only main...change; done | median)
i=$(for _ in $(seq 11); do ns "$bin" check --offline --no-worktree --base main; done | median)
n=$(for _ in $(seq 11); do ns "$bin" check --offline --no-worktree --base main --no-cache; done | median)
echo "one-file change: git diff --name-only ${g} us; imagegate ${i} us with the merge base's facts stored, ${n} us reading every kustomization (--no-cache), ${cold} us for the first run, which stores them (medians of 11)"
python3 -c "print(f'ratio imagegate / git diff --name-only = {$i/$g:.2f} (stored facts), {$n/$g:.2f} (--no-cache)')"
