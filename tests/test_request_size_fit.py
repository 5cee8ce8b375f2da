"""The whole-request limit (64 MiB): images each under the per-image limit can still make a request
too large. `--fit` then shrinks them to one budget each so the request fits (an image under its
share is sent as it is); without --fit the error suggests it only where it can help."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys

from PIL import Image

MIB = 1024 * 1024
SIDE = 1348  # a PNG of random pixels this wide, stored: about 5.2 MiB, under the 6 MiB per image


def mid_pngs(directory, count: int = 10) -> list[str]:
    paths = []
    for n in range(count):
        path = directory / f"mid{n}.png"
        Image.frombytes("RGB", (SIDE, SIDE), os.urandom(SIDE * SIDE * 3)).save(path, "PNG", compress_level=0)
        assert 5 * MIB < path.stat().st_size < 6 * MIB
        paths.append(str(path))
    return paths


def image_args(paths: list[str]) -> list[str]:
    return [arg for path in paths for arg in ("-i", path)]


def error_line(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    return line


def test_without_fit_a_request_over_64_mib_suggests_fit_not_the_per_image_limit(cli, sandbox, tmp_path):
    run = cli("edit", "x", *image_args(mid_pngs(tmp_path)), "--model", "nano-banana-2", "-o", tmp_path / "out")
    assert run.exit_code == 2
    error = error_line(run.stderr)
    assert "the 10 input images make a 69.4 MiB request; at most 64.0 MiB can be sent" in error
    assert "pass --fit to shrink them to fit" in error and "per-image limit" not in error
    assert sandbox.stats.submits == 0


def test_without_pillow_the_request_error_says_what_to_do_instead(cli, sandbox, tmp_path, monkeypatch):
    paths = mid_pngs(tmp_path)
    monkeypatch.setitem(sys.modules, "PIL", None)
    for fit in ((), ("--fit",)):
        run = cli("edit", "x", *image_args(paths), "--model", "nano-banana-2", *fit, "-o", tmp_path / "out")
        assert run.exit_code == 2
        error = error_line(run.stderr)
        assert "at most 64.0 MiB can be sent; send fewer or smaller images, or pass https URLs" in error
        assert "(--fit, which shrinks them to fit, needs Pillow: pip install" in error
    assert sandbox.stats.submits == 0


def test_fit_shrinks_images_under_the_per_image_limit_until_the_request_fits(cli, sandbox, tmp_path):
    small = tmp_path / "small.png"
    Image.new("RGB", (64, 64), "red").save(small)
    paths = [*mid_pngs(tmp_path), str(small)]
    run = cli("edit", "x", *image_args(paths), "--model", "nano-banana-2", "--fit", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    (post,) = [r for r in sandbox.stats.requests if r.method == "POST"]
    assert int(post.headers["Content-Length"]) <= 64 * MIB
    (job,) = sandbox.jobs()
    sent = [base64.b64decode(uri.partition(",")[2]) for uri in job.input["image_urls"]]
    assert len(sent) == 11
    for data, path in zip(sent[:10], paths[:10]):
        assert len(data) < os.path.getsize(path)  # shrunk, and still a PNG of the same shape
        with Image.open(io.BytesIO(data)) as picture:
            assert picture.format == "PNG" and picture.width == picture.height < SIDE
    # an image under its share of the request is sent as it is
    assert hashlib.sha256(sent[10]).hexdigest() == hashlib.sha256(small.read_bytes()).hexdigest()
    # regen re-sends the recorded inputs: with --fit they are shrunk to fit again, without it the error says how
    (made,) = (tmp_path / "out").glob("*.png")
    run = cli("regen", made, "-o", tmp_path / "again")
    assert run.exit_code == 2 and "pass --fit to shrink them to fit" in error_line(run.stderr)
    run = cli("regen", made, "--fit", "-o", tmp_path / "again")
    assert run.exit_code == 0, run.stderr
    posts = [r for r in sandbox.stats.requests if r.method == "POST"]
    assert len(posts) == 2 and int(posts[1].headers["Content-Length"]) <= 64 * MIB
    assert len(sandbox.jobs()[-1].input["image_urls"]) == 11
