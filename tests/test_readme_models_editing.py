"""The examples of README's "Models" and "Editing" sections, and of `help models` / `help
editing`, run as written against the sandbox: each must exit 0. Input files they name are made
first; an https URL they name is replaced by an image on the sandbox's own asset host (the
sandbox fetches nothing from the internet)."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
from pathlib import Path

from PIL import Image

from .test_sandbox_family import BLUE, RED, picture

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
URL = re.compile(r"https://example\.com/\S+")


def section(title: str) -> str:
    """The text of README's `## title` section, up to the next `## `."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def examples(text: str, *, in_code_blocks: bool) -> list[list[str]]:
    """Each `nanobanana …` line, without the program name and any trailing comment or description."""
    if in_code_blocks:
        text = "\n".join(re.findall(r"```sh\n(.*?)```", text, re.S))
    found = []
    for line in text.splitlines():
        if not line.startswith("nanobanana " if in_code_blocks else "  nanobanana "):  # a topic indents its examples
            continue
        line = line.strip()
        command = re.split(r"\s{2,}#|\s+# |\s{3,}", line)[0]  # a `# comment`, or a description column
        found.append(shlex.split(command)[1:])
    return found


def noise_jpeg(path: Path) -> None:
    """A real JPEG over the 6 MiB per-image limit: random pixels do not compress."""
    Image.frombytes("RGB", (2400, 2400), os.urandom(2400 * 2400 * 3)).save(path, "JPEG", quality=100)


def prepare_inputs(cli, tmp_path: Path, commands: list[list[str]]) -> str:
    """The files the examples name, in the working directory; an image URL on the sandbox's asset host."""
    made = cli("generate", "a red square", "-o", tmp_path / "seed", "--json")
    assert made.exit_code == 0, made.stderr
    url = json.loads(made.stdout)["outputs"][0]["url"]
    for command in commands:
        for index, word in enumerate(command[:-1]):
            name = command[index + 1]
            if word in ("-i", "--image") and not name.startswith("https://") and not Path(name).exists():
                if name.startswith("huge") or name.startswith("big"):
                    noise_jpeg(Path(name))
                else:
                    buffer = io.BytesIO()
                    Image.open(io.BytesIO(picture(BLUE if "room" in name else RED))).save(
                        buffer, "JPEG" if name.endswith(".jpg") else "PNG")
                    Path(name).write_bytes(buffer.getvalue())
    return url


def run_all(cli, tmp_path: Path, commands: list[list[str]]) -> None:
    url = prepare_inputs(cli, tmp_path, commands)
    for command in commands:
        command = [URL.sub(url, word) for word in command]
        run = cli(*command)
        assert run.exit_code == 0, (command, run.stderr)


def test_the_models_and_editing_sections_of_readme_run_as_written(cli, sandbox, tmp_path):
    commands = examples(section("Models"), in_code_blocks=True) + examples(section("Editing"), in_code_blocks=True)
    assert len(commands) >= 10 and any(command[0] == "edit" for command in commands)
    run_all(cli, tmp_path, commands)
    edits = [job for job in sandbox.jobs() if job.model_id.endswith("/edit")]
    assert edits and all(job.input.get("image_urls") for job in edits)


def test_the_help_topics_examples_run_as_written(cli, sandbox, tmp_path):
    commands = []
    for topic in ("models", "editing"):
        commands += examples(cli("help", topic).stdout, in_code_blocks=False)
    assert len(commands) >= 10
    run_all(cli, tmp_path, commands)
