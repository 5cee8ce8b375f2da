"""File names are capped in UTF-8 bytes, not characters, before anything is paid for: a slug (the
prompt's, a matrix value's) is cut at a character boundary, a `--name` whose own text cannot fit
is refused with exit 2 and nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from nanobanana_cli.engine.naming import MAX_NAME_LENGTH, cut_to_bytes

FOX = "狐狸" * 100  # 200 characters, 600 bytes


def stems(run) -> list[str]:
    assert run.exit_code == 0, run.stderr
    return [Path(line).stem for line in run.stdout.split()]


def fits(stem: str) -> bool:
    return len(stem.encode("utf-8")) <= MAX_NAME_LENGTH


def test_a_cjk_matrix_value_is_cut_to_the_byte_budget_and_every_image_is_saved(cli, sandbox, tmp_path):
    saved = stems(cli("generate", f"a {{{FOX},{FOX}二}} fox", "-n", "2", "-o", tmp_path, "-q"))
    assert len(saved) == 4 and len(set(saved)) == 4 and all(fits(stem) for stem in saved), saved
    assert all(stem.startswith("狐狸") and stem.rsplit("-", 1)[1] in "1234" for stem in saved)  # values first, index kept
    assert sandbox.stats.submits == 2


def test_two_long_values_and_a_long_prompt_share_the_budget(cli, sandbox, tmp_path):
    run = cli("generate", f"{FOX} {{animal}} in {{place}}", "--var", f"animal={FOX}", "--var", f"place={'森林' * 100}",
              "--name", "{var.animal}-{var.place}-{slug}-{id}-{i}", "-o", tmp_path, "-q")
    (stem,) = stems(run)
    assert fits(stem) and "狐狸" in stem and "森林" in stem and stem.endswith("-1")


def test_a_long_slug_in_a_name_template_is_cut_at_a_character_boundary(cli, sandbox, tmp_path):
    (stem,) = stems(cli("generate", FOX, "--name", "{slug}{slug}{slug}{slug}{slug}{slug}-{i}", "-o", tmp_path, "-q"))
    assert fits(stem) and len(stem.encode()) > MAX_NAME_LENGTH - 12 and stem.endswith("-1")


def test_a_name_template_whose_own_text_cannot_fit_is_refused_before_submitting(cli, sandbox, tmp_path):
    run = cli("generate", "a fox", "--name", "狐" * 67 + "-{i}", "-o", tmp_path / "out")  # 67 characters, 201 bytes and more
    assert run.exit_code == 2 and f"{MAX_NAME_LENGTH} bytes" in run.stderr, run.stderr
    assert sandbox.stats.requests == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("limit", range(13))
def test_cut_to_bytes_never_splits_a_character(limit):
    text = "a狐😀é"
    cut = cut_to_bytes(text, limit)
    assert text.startswith(cut) and len(cut.encode()) <= limit
    assert len(text[:len(cut) + 1].encode()) > limit or cut == text
