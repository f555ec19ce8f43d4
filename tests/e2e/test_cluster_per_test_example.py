"""The shipped example `configs/examples/kopf_cluster_per_test`, run as users run it: a fresh `python -m pytest`
in a subprocess (the plugin comes through its `pytest11` entry point), once as is and once in parallel with
pytest-xdist (`-n 2`): each test gets a logical cluster of its own, forks of the session's snapshot included,
so the seven tests pass either way.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "configs" / "examples" / "kopf_cluster_per_test"


def run_example(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS", "KUBECONFIG")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(EXAMPLE)],
                          cwd=cwd, capture_output=True, text=True, timeout=180, env=environment)


@pytest.mark.parametrize("parallel", [[], ["-n", "2"]], ids=["sequential", "xdist-2"])
def test_the_cluster_per_test_example_passes(tmp_path: Path, parallel: list[str]) -> None:
    result = run_example(tmp_path, *parallel)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = result.stdout.strip().splitlines()[-1]
    # nothing failed, skipped or erred (warnings may be)
    assert re.fullmatch(r"=*\s*7 passed(, \d+ warnings?)? in [\d.]+s( \([\d:]+\))?\s*=*", summary), output
    if parallel:
        assert "bringing up nodes..." in output, output  # xdist distributed them (its -q header)
