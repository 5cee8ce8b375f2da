"""`batch FILE --shard K/N`: a deterministic 1/N of the lines, for N machines running at once;
and `merge`: the shards' directories brought back into one.

A line belongs to a shard by a hash of its key (its prompt, options and name), not by its line
number, so reordering or inserting lines never moves the others to another shard, and the N
shards together cover every line exactly once. Each shard records into its own manifest, so
shards may share an output directory or not; every run reads all the manifests beside its own,
so no line is submitted twice however the shards are laid out.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import UsageError
from ..states import JobState
from ..stores import safe_json
from ..stores.safe_files import create_new, create_temporary, is_regular_file, open_existing, read_regular_file

SHARD_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
COPY_CHUNK = 1024 * 1024

if TYPE_CHECKING:
    from .downloads import SavedFile
    from .manifest import Manifest


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as people count machines
    count: int

    def holds(self, key: str) -> bool:
        bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % self.count
        return bucket == self.index - 1

    @property
    def manifest_name(self) -> str:
        return f"nanobanana-batch.shard-{self.index}-of-{self.count}.jsonl"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(spec: str) -> Shard:
    match = SHARD_SPEC.match(spec)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"invalid --shard {spec!r}", hint="write K/N with 1 ≤ K ≤ N, e.g. --shard 2/4")
    return Shard(int(match[1]), int(match[2]))


# -- merge -----------------------------------------------------------------------------------------


@dataclass
class MergeReport:
    lines: set[str] = field(default_factory=set)  # every line key seen
    done: set[str] = field(default_factory=set)  # lines whose images are now in the destination
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def merge_runs(sources: list[Path], destination: Path) -> MergeReport:
    """Bring the lines of several runs' directories into `destination`: their images (and provenance
    sidecars) copied in, never over a different file, and each line recorded in its manifest.

    Afterwards `batch FILE -o DEST` finds every finished line done and submits nothing for it. A line
    finished in no source keeps its state (a request id to re-attach to, or `uncertain`); a finished
    line whose files are missing or changed keeps its request id, so that run downloads them again.
    """
    from .manifest import Manifest, manifests_in, read_manifests

    for source in sources:
        if not manifests_in(source):
            raise UsageError(
                f"no batch manifest (nanobanana-batch*.jsonl) in {source}", hint="pass the output directories of batch runs"
            )
    target = Manifest(destination)
    report = MergeReport()
    for source in sources:
        for key, state in sorted(read_manifests(source, report.problems.append).items(), key=lambda item: item[1].get("line") or 0):
            report.lines.add(key)
            _merge_line(target, key, state, source, report)
    return report


def _merge_line(target: Manifest, key: str, state: dict[str, Any], source: Path, report: MergeReport) -> None:
    from .manifest import saved_files_present

    destination = target.path.parent
    present = saved_files_present(target.get(key), destination)
    if present is not None:  # already here: this destination's own, or an earlier source's
        if key not in report.done:
            report.done.add(key)
            report.files += [item.path for item in present]
        return
    record = {name: value for name, value in state.items() if name not in ("key", "at")}
    found = saved_files_present(state, source)
    copied = None if found is None else [_copy_in(item, destination, report.problems) for item in found]
    if copied is not None and all(copied):
        record["outputs"] = [item.to_dict() for item in copied if item]
        report.done.add(key)
        report.files += [item.path for item in copied if item]
    elif state.get("status") == JobState.SUCCEEDED:
        report.problems.append(
            f"{source}: line {state.get('line')}: its images are missing or changed; `nanobanana batch FILE -o "
            f"{destination}` downloads them again"
        )
        record.update(status=JobState.SUBMITTED, outputs=None)
    target.record(key, durable=True, **record)


def _copy_in(item: SavedFile, destination: Path, problems: list[str]) -> SavedFile | None:
    """The file copied into `destination` (its sidecar too), verified against its recorded hash; None if it differs.

    Only regular files are copied, never what a link points to: a shard's directory may come from
    anywhere (a CI artifact), and a planted `img.png.json -> ~/.ssh/id_rsa` must not bring the key
    into the merged folder. A sidecar is copied only if it is a bounded JSON object; else `problems` hears why.
    """
    from .downloads import _place
    from .provenance import sidecar_path

    source = Path(item.path)
    if source.parent.resolve() == destination.resolve():
        return item
    if not is_regular_file(source):
        return None
    fd, temporary = create_temporary(destination / source.name, suffix=".merge.part")
    try:
        digest = hashlib.sha256()
        with open_existing(source) as reading, os.fdopen(os.dup(reading), "rb") as reader, os.fdopen(fd, "wb") as writer:
            for block in _blocks(reader):
                digest.update(block)
                writer.write(block)
        if digest.hexdigest() != item.sha256:
            return None
        placed = _place(temporary, destination / source.name, item.sha256)  # never over a different file
    finally:
        temporary.unlink(missing_ok=True)
    sidecar = sidecar_path(source)
    if sidecar.exists() or sidecar.is_symlink():
        try:
            data = read_regular_file(sidecar, safe_json.MAX_BYTES)
            safe_json.loads_object(data)
        except OSError as exc:
            why = "not a regular file (a symbolic link?)" if exc.errno == errno.ELOOP else exc.strerror or exc
            problems.append(f"{sidecar}: not copied: {why}")
        except ValueError as exc:
            problems.append(f"{sidecar}: not copied: not a provenance record ({exc})")
        else:
            create_new(sidecar_path(placed), data)  # one already there (or a link) is left as it is
    return replace(item, path=str(placed.resolve()))


def _blocks(reader: IO[bytes]) -> Iterator[bytes]:
    while block := reader.read(COPY_CHUNK):
        yield block
