"""A download is hashed while it streams and sealed where it was written: the same bytes and hashes as
sealing a copy of the delivered file, with the file read back at most once (a PNG, only from its provenance,
which goes just before IEND)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import struct
from pathlib import Path

import pytest
from PIL import Image

from nanobanana_cli.engine import provenance

from .image_samples import SEEDS
from .test_provenance_streaming import big_jpeg, big_png, big_webp

PROVENANCE = {"prompt": "a fox <&> \u00e9", "request_id": "0123abcd-0000", "index": 1, "count": 1}
SAMPLES = {f"{kind} {name}": make for kind, seeds in SEEDS.items() for name, make in seeds.items()}
SAMPLES.update({"big png": big_png, "big jpeg": big_jpeg, "big webp": big_webp})
# what follows IEND is kept, after the provenance: bytes the hash taken while streaming does not cover
SAMPLES["png with bytes after IEND"] = lambda: SEEDS["png"]["pillow rgb"]() + b"appended" * 5


def streamed(data: bytes, seed: int) -> provenance.ImageDataHasher:
    """The hasher fed `data` in pieces of random sizes, as a network delivers them."""
    hasher, rng, at = provenance.ImageDataHasher(), random.Random(seed), 0
    while at < len(data):
        size = rng.choice((1, 2, 7, 13, 4096, 300_000))
        hasher.feed(data[at:at + size])
        at += size
    return hasher


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_image_data_hash_taken_while_streaming_is_the_one_read_from_the_file(name):
    data = SAMPLES[name]()
    for seed in range(3):
        hasher = streamed(data, seed)
        assert not hasher.broken, "a well-formed image is followed to its end"
        assert hasher.hexdigest() == provenance.image_data_sha256(data)
        assert provenance.streamed_image_data_sha256(io.BytesIO(data), hasher) == provenance.image_data_sha256(data)


@pytest.mark.parametrize("name", ["png pillow rgb", "jpeg baseline", "webp lossy"])
def test_a_hash_that_did_not_see_all_the_image_data_is_not_trusted(name):
    data = SAMPLES[name]()
    cut_short = provenance.ImageDataHasher()
    cut_short.feed(data[: len(data) // 2])
    assert cut_short.hexdigest() != provenance.image_data_sha256(data)
    assert provenance.streamed_image_data_sha256(io.BytesIO(data), cut_short) == provenance.image_data_sha256(data)


def sealed_by_copy(data: bytes, made: dict) -> bytes:
    out = io.BytesIO()
    provenance.embed(io.BytesIO(data), out, made)
    return out.getvalue()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sealing_in_place_writes_the_bytes_sealing_a_copy_writes(name, tmp_path):
    data = SAMPLES[name]()
    made = {**PROVENANCE, "image_data_sha256": provenance.image_data_sha256(data)}
    gap = provenance.room_for(data[:16], PROVENANCE)
    path = tmp_path / "download.part"
    with path.open("wb") as handle:
        handle.seek(gap)
        handle.write(data)
    try:
        expected = sealed_by_copy(data, made)
    except provenance.NotEmbeddable as refused:
        with path.open("r+b") as handle, pytest.raises(provenance.NotEmbeddable, match=str(refused)):
            provenance.seal_in_place(handle, gap, made)
        assert path.read_bytes()[gap:] == data, "a refusal writes nothing"
        return
    # the hash of all but the last 12 delivered bytes, as a download streams it; used only when the
    # bytes in front of the provenance are those (a PNG ending with IEND), else the file is read whole
    prefix = (hashlib.sha256(data[:-12]), len(data) - 12)
    with path.open("r+b") as handle:
        digest, size = provenance.seal_in_place(handle, gap, made, prefix)
    assert path.read_bytes() == expected
    assert (digest, size) == (hashlib.sha256(expected).hexdigest(), len(expected))


def noise_png(path: Path, megabytes: float) -> bytes:
    """A PNG of random pixels: it does not compress, so its image data is nearly all of its bytes."""
    side = int((megabytes * 1024 * 1024 / 3) ** 0.5)
    Image.frombytes("RGB", (side, side), random.Random(7).randbytes(side * side * 3)).save(path, compress_level=1)
    return path.read_bytes()


class CountingReads:
    """A file object that counts the bytes read through it."""

    total = 0

    def __init__(self, handle) -> None:
        self._handle = handle

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        CountingReads.total += len(data)
        return data

    def readinto(self, buffer) -> int:
        count = self._handle.readinto(buffer)
        CountingReads.total += count or 0
        return count

    def __getattr__(self, name: str):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()

    def __iter__(self):
        return iter(self._handle)


@pytest.mark.parametrize("metadata", ["embed", "sidecar"])
def test_a_download_keeps_its_hashes_and_reads_its_file_back_at_most_once(metadata, cli, start_sandbox, monkeypatch, tmp_path):
    original = noise_png(tmp_path / "noise.png", 3)
    start_sandbox(image_bytes=original)
    out, opened, builtin_open = tmp_path / "out", Path.open, open

    def counting_open(self: Path, mode: str = "r", *args, **kwargs):
        handle = opened(self, mode, *args, **kwargs)
        return CountingReads(handle) if str(self).startswith(str(out)) and "b" in mode else handle

    def counting_builtin_open(file, mode="r", *args, **kwargs):
        handle = builtin_open(file, mode, *args, **kwargs)
        return CountingReads(handle) if str(file).startswith(str(out)) and "b" in mode else handle

    CountingReads.total = 0
    with monkeypatch.context() as patched:
        patched.setattr(Path, "open", counting_open)
        patched.setattr("builtins.open", counting_builtin_open)
        run = cli("generate", "a fox", "-o", out, "--metadata", metadata, "--json")
    assert run.exit_code == 0, run.stderr
    saved = json.loads(run.stdout)["outputs"][0]
    written = Path(saved["path"]).read_bytes()
    made, where = provenance.read(Path(saved["path"]))
    assert where == ("embedded" if metadata == "embed" else "sidecar")
    assert made["image_data_sha256"] == provenance.image_data_sha256(original)
    # The values an earlier version recorded for the same delivered bytes: the file as a copy seals it.
    assert written == (sealed_by_copy(original, made) if metadata == "embed" else original)
    assert saved["sha256"] == hashlib.sha256(written).hexdigest() and saved["bytes"] == len(written)
    assert saved["delivered_sha256"] == hashlib.sha256(original).hexdigest()
    # Headers are read to check the layout, and the sealed PNG from its provenance on: the bytes before it
    # were hashed as they streamed, for both sha256s.
    assert CountingReads.total <= 256 * 1024, f"{CountingReads.total} bytes read back of {len(written)}"
    assert not [p for p in os.listdir(out) if p.endswith(".part")]

    report = cli("inspect", saved["path"], "--json")
    assert report.exit_code == 0 and json.loads(report.stdout)["intact"] is True


def png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk of a well-formed PNG."""
    chunks, at = [], len(provenance.PNG_SIGNATURE)
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.append((kind, at, at + 12 + length))
        at += 12 + length
    return chunks


def test_a_sealed_png_download_carries_its_provenance_before_iend_and_records_the_hashes_of_the_bytes(
    cli, start_sandbox, tmp_path
):
    sandbox = start_sandbox(asset_padding_bytes=3 * 1024 * 1024)  # as the benchmark's: 3 MB more image data
    run = cli("generate", "a fox", "-o", tmp_path, "--json")
    assert run.exit_code == 0, run.stderr
    made = json.loads(run.stdout)
    saved = made["outputs"][0]
    served = sandbox.asset(made["request_id"], 1)[1].data
    written = Path(saved["path"]).read_bytes()
    kinds = [kind for kind, _, _ in png_chunks(written)]
    assert kinds[-3:] == [b"IDAT", b"iTXt", b"IEND"] and kinds.count(b"IDAT") > 40
    _, start, end = png_chunks(written)[-2]
    assert written[start + 8:start + 8 + len(provenance.PNG_PREFIX)] == provenance.PNG_PREFIX
    assert written[:start] + written[end:] == served, "every delivered byte kept, in order, around the chunk"
    assert saved["sha256"] == hashlib.sha256(written).hexdigest() and saved["bytes"] == len(written)
    assert saved["delivered_sha256"] == hashlib.sha256(served).hexdigest()
    found, where = provenance.read(Path(saved["path"]))
    assert where == "embedded" and found["request_id"] == made["request_id"]
    assert found["image_data_sha256"] == provenance.image_data_sha256(served)
    with Image.open(saved["path"]) as image:  # Pillow reads text after the image data once it is loaded
        image.load()
        assert json.loads(image.text["nanobanana"]) == found
        assert image.size == Image.open(io.BytesIO(served)).size
    report = cli("inspect", saved["path"], "--json")
    assert report.exit_code == 0 and json.loads(report.stdout)["intact"] is True
