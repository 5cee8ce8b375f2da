"""`nanobanana doctor`: is everything in place to generate images?"""

from ..errors import AlreadyReported, ExitCode
from ..sanitise import shown
from .options import BaseUrlOpt, JsonOpt, TokenOpt, command_settings, make_output


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
    checks = run_checks(command_settings(token, base_url=base_url))
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        lines.append(f"{check.state:<4}  {check.name:<{width}}  {shown(check.detail)}")  # a detail may quote the server
        if check.fix:
            lines.append(f"      {'':<{width}}  fix: {check.fix}")
    output.emit([check.to_dict() for check in checks], lines)
    if any(check.state == "fail" for check in checks):
        raise AlreadyReported(ExitCode.ERROR)
