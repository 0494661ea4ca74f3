#!/bin/sh
# deps.sh: installs the Debian packages strata builds, tests and benchmarks with,
# when any is missing.  Quiet and fast when everything is there.
set -e
PKGS="build-essential clang clang-format libclang-rt-14-dev pkg-config libmicrohttpd-dev libprotobuf-c-dev
protobuf-c-compiler libsnappy-dev libzstd-dev libcmocka-dev libjansson-dev libjwt-dev libssl-dev
libcurl4-openssl-dev curl python3 python3-jsonschema prometheus victoria-metrics chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# The web console is built with node and npm (console/, docs/console.md): Debian's nodejs
# and npm, unless a node with its own npm is already installed (checked by command, so
# another packaging of node is not replaced).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The prometheus and victoria-metrics packages start system services; the tests
# run their own instances on loopback, so stop the packaged ones if started.
$SUDO apt-get install -y -qq --no-install-recommends $missing
for svc in prometheus victoria-metrics; do
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true; fi
done
exit 0
