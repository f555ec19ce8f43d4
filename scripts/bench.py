#!/usr/bin/env python3
"""Measure kapi beside its ceilings; the code is `kapi_cli.bench` (`--help` for the options).

    python scripts/bench.py --quick            # every figure at small sizes
    python scripts/bench.py --backend etcd     # starts its own etcd

It runs kapi as installed (`pip install -e .`, the README's set-up): the checkout's folders are not
the installed package names (`server/` installs as `kapi`).
"""
from __future__ import annotations

import sys

from kapi_cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
