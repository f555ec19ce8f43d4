"""`python -m kapi_cli.bench`."""
from __future__ import annotations

import sys

from kapi_cli.bench import main

sys.exit(main())
