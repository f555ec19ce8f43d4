"""`kapi start --authorization-mode`: kube-apiserver's comma-separated list of authorizers, asked in order."""
from __future__ import annotations

from dataclasses import dataclass

import typer

from kapi.auth.modes import DEFAULT_MODES, check_modes


@dataclass(frozen=True)
class AuthorizationFlags:
    modes: str = ",".join(DEFAULT_MODES)

    def checked(self) -> dict[str, object]:
        """The ServerConfig fields these flags set; kube's complaint for a bad list."""
        try:
            modes = check_modes([m.strip() for m in self.modes.split(",") if m.strip()])
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--authorization-mode") from None
        return {"authorization_modes": modes}

    def args(self) -> list[str]:
        """The same flag for a detached child process."""
        return ["--authorization-mode", self.modes]
