#!/usr/bin/env bash
# Installs imagegate for the GitHub Action (and the pre-commit hook), pinned and verified.
#
#   action-install.sh version   resolve the version to install; writes `version=` to $GITHUB_OUTPUT
#   action-install.sh install   install it; adds its directory to $GITHUB_PATH and prints the
#                               binary's path as the last line on stdout
#
# The version is IMAGEGATE_VERSION (a release tag such as v0.1.0) or, when that is empty, the
# release this action is itself: the `.version` file of its checkout (stamped when a release
# is cut; the release workflow refuses a tag that disagrees with it). The archive for this
# runner (Linux and macOS on x86-64 and arm64, Windows on x86-64) is downloaded and verified
# against the release's SHA256SUMS; a mismatch is refused and never falls back. Only when the
# release has no archive for this runner does it build imagegate from the action's own
# checked-out source with `cargo build --locked`, never a crate from a registry by name.
#
# Inputs come only from the environment: IMAGEGATE_VERSION, IMAGEGATE_ACTION_PATH (the
# action's checkout; default: this script's repository), IMAGEGATE_REPO (owner/name),
# IMAGEGATE_TOOL_CACHE, IMAGEGATE_RELEASE_URL (a base URL holding VERSION/ARCHIVE, for
# mirrors and tests; default https://github.com/OWNER/NAME/releases/download).
set -euo pipefail

fail() {
  echo "::error title=imagegate install::$*" >&2
  exit 1
}
note() { echo "imagegate: $*" >&2; }

# Git Bash on Windows runners: turn Windows paths into POSIX ones and back.
posix() { if command -v cygpath >/dev/null 2>&1; then cygpath -u "$1"; else printf '%s\n' "$1"; fi; }
native() { if command -v cygpath >/dev/null 2>&1; then cygpath -w "$1"; else printf '%s\n' "$1"; fi; }

action=$(posix "${IMAGEGATE_ACTION_PATH:-${GITHUB_ACTION_PATH:-$(dirname "$0")/..}}")
own=$(tr -d ' \r\n' <"$action/.version" 2>/dev/null || true)

version=${IMAGEGATE_VERSION:-}
version=${version//[[:space:]]/}
if [ -z "$version" ]; then
  [ -n "$own" ] || fail "no version given and no .version file in $action"
  version=$own
fi
case "$version" in
  latest) fail "version 'latest' is not supported: pin a release such as $own (the default is the release this action is pinned to)" ;;
  [0-9]*) version="v$version" ;;
esac
if ! [[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  fail "version '$version' is not a release tag such as v0.1.0"
fi

if [ "${1:-}" = version ]; then
  if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "version=$version" >>"$GITHUB_OUTPUT"; fi
  echo "$version"
  exit 0
fi
[ "${1:-}" = install ] || fail "usage: action-install.sh version|install"

exe=imagegate
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) target=x86_64-unknown-linux-musl ;;
  Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-musl ;;
  Darwin-x86_64) target=x86_64-apple-darwin ;;
  Darwin-arm64) target=aarch64-apple-darwin ;;
  MINGW*-x86_64 | MSYS*-x86_64 | CYGWIN*-x86_64) target=x86_64-pc-windows-msvc exe=imagegate.exe ;;
  *) target="" ;;
esac

cache=$(posix "${IMAGEGATE_TOOL_CACHE:-${RUNNER_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}}}")/imagegate/$version

done_with() { # dir: put it on the PATH of later steps and print the binary
  if [ -n "${GITHUB_PATH:-}" ]; then native "$1" >>"$GITHUB_PATH"; fi
  note "using $1/$exe ($("$1/$exe" --version))"
  echo "$1/$exe"
  exit 0
}

# A cached binary counts only when it is the version asked for.
if [ -x "$cache/$exe" ]; then
  case "$("$cache/$exe" --version 2>/dev/null)" in
    "imagegate ${version#v}" | "imagegate ${version#v} "*) done_with "$cache" ;;
  esac
fi

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$target" ]; then
  repo=${IMAGEGATE_REPO:-imagegate/imagegate}
  base=${IMAGEGATE_RELEASE_URL:-https://github.com/$repo/releases/download}
  archive="imagegate-$target.tar.gz"
  url="$base/$version/$archive"
  note "downloading $url"
  if curl -fsSL --retry 3 -o "$tmp/$archive" "$url"; then
    curl -fsSL --retry 3 -o "$tmp/SHA256SUMS" "$base/$version/SHA256SUMS" ||
      fail "downloaded $archive but not the release's SHA256SUMS; refusing an unverified binary"
    expected=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$tmp/SHA256SUMS")
    actual=$(sha256 "$tmp/$archive")
    if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
      fail "checksum mismatch for $archive (SHA256SUMS says '${expected:-nothing}', the download is '$actual'); refusing to install"
    fi
    note "sha256 $actual verified against SHA256SUMS"
    tar -xzf "$tmp/$archive" -C "$tmp" "imagegate-$target/$exe"
    mkdir -p "$cache"
    cp "$tmp/imagegate-$target/$exe" "$cache/$exe"
    chmod 755 "$cache/$exe"
    done_with "$cache"
  fi
  echo "::warning title=imagegate install::no release archive at $url"
else
  echo "::warning title=imagegate install::no release binary is built for $(uname -s) $(uname -m)"
fi

# The only fallback: build the action's own source, which is the version asked for only
# when that is the action's own release.
if [ "$version" != "$own" ]; then
  fail "cannot install imagegate $version here, and this action's source is $own; pin the action to the version you want (uses: …@$version) or leave 'version' empty"
fi
[ -f "$action/Cargo.toml" ] || fail "no release binary, and no source to build at $action"
command -v cargo >/dev/null 2>&1 || fail "no release binary for this runner and no cargo to build $action with"
note "building imagegate $version from the action's own source ($action) with cargo build --locked"
build=$(posix "${RUNNER_TEMP:-$tmp}")/imagegate-build
cargo build --release --locked --manifest-path "$action/Cargo.toml" --target-dir "$build"
mkdir -p "$cache"
cp "$build/release/$exe" "$cache/$exe"
done_with "$cache"
