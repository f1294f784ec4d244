#!/usr/bin/env bash
# Print the path of Prometheus's promtool, fetching it once if needed:
# Debian's prometheus package is downloaded (not installed: no service is
# started) and promtool extracted to build/tools/.  Prints nothing and
# exits 1 when it cannot be had (no network, not Debian).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
if command -v promtool >/dev/null 2>&1; then command -v promtool; exit 0; fi
out=$top/build/tools
[ -x "$out/promtool" ] && { echo "$out/promtool"; exit 0; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1 ) || exit 1
dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x" 2>/dev/null || exit 1
mkdir -p "$out" && cp "$tmp/x/usr/bin/promtool" "$out/promtool" || exit 1
echo "$out/promtool"
