"""`nanobanana doctor`: is everything in place to generate images?"""

from __future__ import annotations

import typer

from .options import BaseUrlOpt, JsonOpt, TokenOpt, make_output


def doctor_run(token: TokenOpt = None, base_url: BaseUrlOpt = None, json_: JsonOpt = False) -> None:
    """Check config paths, the token and its source, API reachability and token acceptance.

    One line per check with ok, fail or skip, and the fix for each failure. Exits 1 if any check
    fails.

    Examples:

      nanobanana doctor

      nanobanana doctor --json | jq '.[] | select(.state == "fail")'
    """
    from ..doctor import run_checks

    output = make_output(json_, False)
    checks = run_checks(token, base_url)
    if output.mode.value == "json":
        output.result_json([check.to_dict() for check in checks])
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            line = f"{check.state:<4}  {check.name:<{width}}  {check.detail}"
            output.result_line(line + (f"\n      {'':<{width}}  fix: {check.fix}" if check.fix else ""))
    if any(check.state == "fail" for check in checks):
        raise typer.Exit(1)
