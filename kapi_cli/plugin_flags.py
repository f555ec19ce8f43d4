"""`kapi start`'s plugin flags: `--plugin`, `--admission-plugins`, `--apiexts-prefix` (issue 8)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import typer

from kapi.plugins.apiexts import prefix_problem

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class PluginFlags:
    plugins: tuple[str, ...] = ()
    admission_plugins: Optional[str] = None  # comma-separated, in order; None: every known plugin
    apiexts_prefix: str = "/wukong"

    def checked(self) -> dict[str, object]:
        """The ServerConfig fields these flags set, after checking their form."""
        for module in self.plugins:
            if not _MODULE.match(module):
                raise typer.BadParameter(f"{module!r} is not a Python module name (package.module)",
                                         param_hint="--plugin")
        prefix = "/" + self.apiexts_prefix.strip("/")
        problem = prefix_problem(prefix)
        if problem:
            raise typer.BadParameter(f"{self.apiexts_prefix!r} cannot hold plugin routes: {problem}",
                                     param_hint="--apiexts-prefix")
        admission = None
        if self.admission_plugins is not None:
            admission = tuple(n.strip() for n in self.admission_plugins.split(",") if n.strip())
        return {"plugins": self.plugins, "admission_plugins": admission, "apiexts_prefix": prefix}

    def args(self) -> list[str]:
        """The same flags for a detached child process."""
        out = [arg for module in self.plugins for arg in ("--plugin", module)]
        if self.admission_plugins is not None:
            out += ["--admission-plugins", self.admission_plugins]
        return out + ["--apiexts-prefix", self.apiexts_prefix]
