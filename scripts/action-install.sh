#!/usr/bin/env bash
# Installs the imagegate release binary for this runner (Linux and macOS, x86-64 and arm64),
# verifies its SHA-256 against the release's checksum file, and caches it in the runner's
# tool cache. Falls back to `cargo install --locked imagegate` where no binary exists.
# Inputs come only from the environment: IMAGEGATE_VERSION, IMAGEGATE_REPO,
# IMAGEGATE_TOOL_CACHE, and IMAGEGATE_RELEASE_URL (a base URL, for mirrors and tests).
set -euo pipefail

version=${IMAGEGATE_VERSION:-latest}
repo=${IMAGEGATE_REPO:-imagegate/imagegate}
cache=${IMAGEGATE_TOOL_CACHE:-${RUNNER_TOOL_CACHE:-$HOME/.cache}}/imagegate/$version

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) target=x86_64-unknown-linux-musl ;;
  Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-musl ;;
  Darwin-x86_64) target=x86_64-apple-darwin ;;
  Darwin-arm64) target=aarch64-apple-darwin ;;
  *) target="" ;;
esac

add_to_path() {
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$1" >>"$GITHUB_PATH"; fi
  echo "imagegate: using $1/imagegate"
}

if [ -x "$cache/imagegate" ]; then
  add_to_path "$cache"
  exit 0
fi

if [ -n "$target" ]; then
  if [ -n "${IMAGEGATE_RELEASE_URL:-}" ]; then
    base=$IMAGEGATE_RELEASE_URL
  elif [ "$version" = latest ]; then
    base="https://github.com/$repo/releases/latest/download"
  else
    base="https://github.com/$repo/releases/download/$version"
  fi
  archive="imagegate-$target.tar.gz"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if curl -fsSL --retry 3 -o "$tmp/$archive" "$base/$archive" &&
    curl -fsSL --retry 3 -o "$tmp/SHA256SUMS" "$base/SHA256SUMS"; then
    expected=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$tmp/SHA256SUMS")
    if command -v sha256sum >/dev/null 2>&1; then
      actual=$(sha256sum "$tmp/$archive" | cut -d' ' -f1)
    else
      actual=$(shasum -a 256 "$tmp/$archive" | cut -d' ' -f1)
    fi
    if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
      echo "::error title=imagegate::checksum mismatch for $archive (expected '${expected}', got '${actual}'); refusing to install" >&2
      exit 1
    fi
    mkdir -p "$cache"
    tar -xzf "$tmp/$archive" -C "$cache" imagegate
    chmod +x "$cache/imagegate"
    add_to_path "$cache"
    exit 0
  fi
  echo "::warning title=imagegate::no release binary for $target at $base; building with cargo install"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "::error title=imagegate::no release binary for this runner and no cargo to build one" >&2
  exit 1
fi
if [ "$version" = latest ]; then
  cargo install --locked --root "$cache/.." imagegate
else
  cargo install --locked --root "$cache/.." --version "${version#v}" imagegate
fi
mkdir -p "$cache"
cp "$cache/../bin/imagegate" "$cache/imagegate"
add_to_path "$cache"
