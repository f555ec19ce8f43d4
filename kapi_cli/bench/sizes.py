"""How big each measurement is: the full run, and `--quick` (small, for CI: every figure, in seconds)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    n: int                           # requests per create/patch/update run; gets are 4n
    list_small: int                  # objects in the small list namespace
    list_large: int                  # objects in the large one (also the paged traversal)
    page: int                        # limit= of the paged list
    list_repeats: int                # lists timed per size
    traversals: int                  # paged traversals timed
    memory: tuple[int, ...]          # object counts RSS is read at
    scale: tuple[int, ...]           # object counts of the scaling curve
    scale_batch: int                 # creates timed at each scale point (the last ones before it)
    watch_n: int                     # creates per watch figure
    ceiling_ops: int = 20_000       # requests per bare-ceiling load (at least 4n)
    rollouts: tuple[int, ...] = (100, 1_000)  # replicas of the simulated Deployment rollouts
    watchers: int = 50
    delete_n: int = 5_000            # objects one DELETE of a collection removes
    startups: int = 5

    @classmethod
    def full(cls, n: int) -> "Sizes":
        return cls(n=n, list_small=1_000, list_large=10_000, page=500, list_repeats=20, traversals=5,
                   memory=(10_000, 100_000), scale=(1_000, 10_000, 100_000), scale_batch=1_000,
                   watch_n=min(n, 500))

    @classmethod
    def quick(cls, n: int | None) -> "Sizes":
        n = n or 200
        return cls(n=n, list_small=100, list_large=1_000, page=50, list_repeats=10, traversals=3,
                   memory=(1_000, 5_000), scale=(100, 1_000), scale_batch=100, watch_n=min(n, 100),
                   ceiling_ops=5_000, rollouts=(100,), delete_n=1_000)


def human(count: int) -> str:
    """1000 -> "1k", 100000 -> "100k", 250 -> "250": for namespace and row names."""
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else str(count)
