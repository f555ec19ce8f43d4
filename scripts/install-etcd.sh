#!/usr/bin/env sh
# Install etcd (Debian's etcd-server, and etcd-client for the tests' etcdctl); a no-op when both are there.
set -eu
if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q etcd-server etcd-client >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q etcd-server etcd-client >/dev/null
fi
etcd --version | head -1
