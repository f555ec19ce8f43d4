#!/usr/bin/env sh
# Install etcd (Debian's etcd-server) for the etcd backend and its tests; a no-op when etcd is there.
set -eu
if command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q etcd-server >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q etcd-server >/dev/null
fi
etcd --version | head -1
