#!/usr/bin/env bash
# Make sure the Debian packages vmscreen needs are installed.
# As root it installs what is missing with apt-get; otherwise it prints the
# exact command to run and fails.
set -euo pipefail
PKGS=(build-essential pkg-config python3
      libsndfile1-dev libflac-dev libmicrohttpd-dev libsodium-dev libsamplerate0-dev libpocketsphinx-dev pocketsphinx pocketsphinx-en-us
      libcurl4-openssl-dev libconfig-dev libjansson-dev libssl-dev libsystemd-dev check
      flite festival festvox-kallpc16k festvox-us-slt-hts sox libsox-fmt-all
      libfasttext-dev fasttext irstlm sphinxbase-utils
      sphinxtrain asterisk-core-sounds-en asterisk-core-sounds-en-wav
      valgrind clang clang-format libclang-rt-14-dev systemd procps bc strace util-linux acl
      dpkg-dev debhelper fakeroot lintian logrotate
      redis-server libhiredis-dev zlib1g-dev libmagic-dev
      chromium)
missing=()
# issue 11: node and npm vendor wavesurfer.js into the console (make console)
# and drive chromium in tests/integration/test_console.py.  Any node will do
# (a nodesource nodejs brings its own npm and conflicts with Debian's npm
# package), so Debian's are installed only when there is none.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	missing+=(nodejs npm)
fi
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "deps: missing Debian packages; run:" >&2
	echo "  sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
