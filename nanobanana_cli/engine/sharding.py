"""`batch FILE --shard K/N`: a deterministic 1/N of the lines, for N machines running at once.

A line belongs to a shard by a hash of its key (its prompt, options and name), not by its line
number, so reordering or inserting lines never moves the others to another shard, and the N
shards together cover every line exactly once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..errors import UsageError

SHARD_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as people count machines
    count: int

    def holds(self, key: str) -> bool:
        bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % self.count
        return bucket == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(spec: str) -> Shard:
    match = SHARD_SPEC.match(spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"invalid --shard {spec!r}", hint="write K/N with 1 ≤ K ≤ N, e.g. --shard 2/4")
    return Shard(int(match[1]), int(match[2]))
