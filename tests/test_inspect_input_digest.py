"""`inspect`: a crafted input record's sha256 is cut to 16 characters before it is escaped, so the
excerpt never ends inside an escape (a lone backslash, or half of `\\x1b`)."""

from __future__ import annotations

from .test_sanitise import assert_clean, crafted_png


def test_a_crafted_digest_is_cut_before_it_is_escaped(cli, tmp_path):
    image = crafted_png(tmp_path / "gift.png", {
        "prompt": "a fox", "image_urls": [{"file": "b.png", "bytes": 12, "sha256": "\x1ba" * 32}],
    })
    run = cli("inspect", image)
    assert run.exit_code == 0, run.stderr
    assert_clean(run.stdout, run.stderr)
    assert "(12 bytes, sha256 " + "\\x1ba" * 8 + "…)" in run.stdout
