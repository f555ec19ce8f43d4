"""`kapi start`'s service-account token flags: `--service-account-issuer`, `--service-account-key-file`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from kapi.auth.service_account import DEFAULT_ISSUER


@dataclass(frozen=True)
class ServiceAccountFlags:
    issuer: str = DEFAULT_ISSUER  # kube-apiserver's --service-account-issuer (and API audience)
    key_file: Optional[Path] = None  # the signing key (PEM RSA); None: <file-rootpath>/cert/sa.key

    def checked(self) -> dict[str, object]:
        """The ServerConfig fields these flags set, after checking their form."""
        if not self.issuer.strip():
            raise typer.BadParameter(f"an issuer is needed (kube's default: {DEFAULT_ISSUER})",
                                     param_hint="--service-account-issuer")
        key_file = self.key_file.expanduser().resolve() if self.key_file is not None else None
        if key_file is not None and key_file.exists() and not key_file.is_file():
            raise typer.BadParameter(f"{self.key_file} is not a file", param_hint="--service-account-key-file")
        return {"service_account_issuer": self.issuer, "service_account_key_file": key_file}

    def args(self) -> list[str]:
        """The same flags for a detached child process."""
        out = ["--service-account-issuer", self.issuer]
        return out + (["--service-account-key-file", str(self.key_file)] if self.key_file is not None else [])
