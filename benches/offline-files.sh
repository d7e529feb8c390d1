#!/usr/bin/env bash
# Offline scan benchmark (issue 17): RESOURCES Deployments (default 50,000) in FILES files
# (default 5,000), checked with `imagegate check --all --offline` at default flags (human output). Prints the
# median wall time of RUNS, imagegate's peak RSS, and a plain text search over the same bytes
# (rg when installed, else grep) as the peer measured in the same run.
#
#   benches/offline-files.sh [RESOURCES] [FILES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
resources=${1:-50000}
files=${2:-5000}
runs=${3:-5}
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/imagegate"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work/repo" "$resources" "$files" <<'PY'
import os, sys
root, resources, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = resources // files
for f in range(files):
    d = os.path.join(root, f"team{f % 50}")
    os.makedirs(d, exist_ok=True)
    docs = []
    for r in range(per):
        i = f * per + r
        docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{i}
  labels: {{app: app{i}, team: team{f % 50}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: app{i}}}
  template:
    metadata:
      labels: {{app: app{i}}}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/app{i % 700}:1.{i % 40}.0
          ports: [{{containerPort: 8080}}]
          resources: {{requests: {{cpu: 100m, memory: 128Mi}}}}
""")
    with open(os.path.join(d, f"apps{f}.yaml"), "w") as out:
        out.write("---\n".join(docs))
PY
bytes=$(du -sb "$work/repo" | cut -f1)

# Median wall time, the peak RSS and the median CPU time (user + system; on a shared
# machine the wall time also measures the neighbours) of one command, run RUNS times.
measure() {
  python3 - "$runs" "$@" <<'PY'
import resource, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
times, cpu = [], []
def used():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
for _ in range(runs):
    c = used()
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times.append(time.perf_counter() - t)
    cpu.append(used() - c)
times.sort()
cpu.sort()
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{times[len(times) // 2]:.3f} {rss:.1f} {cpu[len(cpu) // 2]:.3f}")
PY
}

read -r ig ig_rss ig_cpu < <(measure "$bin" check --all --offline "$work/repo")
if command -v rg >/dev/null; then peer=(rg -c "image:" "$work/repo"); else peer=(grep -rc "image:" "$work/repo"); fi
read -r pe _ _ < <(measure "${peer[@]}")
echo "offline scan: $resources resources in $files files ($((bytes / 1024 / 1024)) MB), $(nproc) cores"
echo "imagegate check --all --offline: median ${ig} s (CPU ${ig_cpu} s), peak RSS ${ig_rss} MB"
echo "${peer[0]} over the same bytes: median ${pe} s; imagegate / ${peer[0]} = $(python3 -c "print(f'{$ig / $pe:.1f}')")"
