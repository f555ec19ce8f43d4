#!/usr/bin/env python3
"""Start a local etcd for kapi: one member, or a 3-member cluster, on loopback ports.

    python scripts/etcd.py                    # one member on free ports, until Ctrl-C
    python scripts/etcd.py --members 3        # a 3-member cluster
    python scripts/etcd.py --port 2379        # one member on the usual client port
    python scripts/etcd.py --tls              # TLS with client certificates (files under --data-dir)

It prints the `kapi start --backend=etcd ...` command line that uses it.
Data lives under --data-dir (a temporary directory by default, removed at
exit). etcd itself is Debian's etcd-server (`scripts/install-etcd.sh`).
"""
from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from kapi_cli.etcd_local import EtcdNotFound, LocalEtcd, make_tls_files  # kapi as installed (README's set-up)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, choices=(1, 3), default=1)
    parser.add_argument("--port", type=int, default=0, help="client port of the first member (default: free)")
    parser.add_argument("--data-dir", type=Path, help="keep data here (default: a temporary directory)")
    parser.add_argument("--tls", action="store_true", help="serve TLS and require client certificates")
    args = parser.parse_args()
    root = args.data_dir or Path(tempfile.mkdtemp(prefix="kapi-etcd-"))
    tls = make_tls_files(root / "tls") if args.tls else None
    cluster = LocalEtcd.create(root, args.members, tls)
    if args.port:
        cluster.members[0].client_port = args.port
    try:
        cluster.start()
    except (EtcdNotFound, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    command = f"kapi start --backend=etcd --etcd-servers={cluster.endpoints}"
    if tls:
        command += f" --etcd-cafile={tls.ca} --etcd-certfile={tls.client_cert} --etcd-keyfile={tls.client_key}"
    print(f"etcd ({args.members} member{'s' if args.members > 1 else ''}) at {cluster.endpoints}")
    print(f"data: {root}   log: {cluster.log_path}")
    print(f"use it:  {command}")
    print("Ctrl-C stops it", flush=True)
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
        if args.data_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
