#!/usr/bin/env python3
"""Measure kapi beside its ceilings; the code is `kapi_cli.bench` (`--help` for the options).

    python scripts/bench.py --quick            # every figure at small sizes
    python scripts/bench.py --backend etcd     # starts its own etcd
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from kapi_cli.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
