#!/usr/bin/env bash
# Build the sdist and the wheel, check their metadata, and smoke-test the wheel installed alone
# (no editable checkout, no test extras) in a fresh venv: what a `pip install` / `pipx` user gets.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/tools"
"$work/tools/bin/pip" install -q build twine
"$work/tools/bin/python" -m build -q --outdir "$work/dist" . >/dev/null
"$work/tools/bin/twine" check --strict "$work/dist"/*
python3 -m venv "$work/user"
"$work/user/bin/pip" install -q "$work/dist"/*.whl
cd "$work"  # away from the checkout, so the installed wheel is what gets imported
"$work/user/bin/nanobanana" --version
"$work/user/bin/nanobanana" generate "a red fox" --dry-run --token smoke-test >/dev/null
"$work/user/bin/python" -c "import nanobanana_cli, pathlib; from nanobanana_cli import Client; assert (pathlib.Path(nanobanana_cli.__file__).parent / 'py.typed').is_file(); assert 'site-packages' in nanobanana_cli.__file__"
# package data: the bundled catalog snapshot that serves when the catalog cannot be reached
"$work/user/bin/python" -c "from nanobanana_cli.api.family import bundled_entries, family_ids; assert [e['model_id'] for e in bundled_entries()] == list(family_ids())"
# the man page: installed where man finds it for this environment (man looks in ../share/man beside each PATH entry)
test "$(cat "$work/user/share/man/man1/nanobanana.1")" = "$(cat "$OLDPWD/docs/nanobanana.1")"
if command -v man >/dev/null; then
    found=$(PATH="$work/user/bin:$PATH" MANPATH= man -w nanobanana)
    test "$found" = "$work/user/share/man/man1/nanobanana.1" || { echo "man finds $found, not the installed page" >&2; exit 1; }
    PATH="$work/user/bin:$PATH" MANPATH= MANWIDTH=80 man nanobanana 2>/dev/null | grep -q "^EXIT STATUS"
fi
echo "package: sdist and wheel built, twine check passed, wheel smoke test passed"
