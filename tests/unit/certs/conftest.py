"""Shared fixtures for the PKI tests: one CA per module (RSA keys cost ~40 ms each) and openssl."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest
from cryptography import x509

from kapi_certs import pki


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, pki.PrivateKey]:
    return pki.make_ca()


OpenSSL = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def openssl() -> OpenSSL:
    """Run the `openssl` command without a shell; callers check returncode (some expect failure)."""
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("openssl is not installed")

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([path, *map(str, args)], capture_output=True, text=True, timeout=30)

    return run
