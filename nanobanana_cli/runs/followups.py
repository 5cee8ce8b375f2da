"""What follows saved images: the --on-done command for each, previews, and a notification."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ..engine.hooks import Hook
    from ..engine.outcome import JobOutcome
    from ..render.output import Output
    from ..stores.settings import Settings


# not a dataclass: imported before every submit (see ARCHITECTURE.md, Layers)
class Followups(NamedTuple):
    """What follows saved images: the --on-done command for each, a preview of each once the
    progress display has gone, and a notification when the wait was long enough to look away."""

    output: Output
    preview: bool
    hook: Hook | None
    notify_after: float | None  # None: --notify is off
    started: float  # time.monotonic() when the command began

    @classmethod
    def of(cls, output: Output, settings: Settings) -> Followups:
        """From the settings; a bad --on-done template is refused here, before anything is paid for."""
        template = settings["on_done"]
        notify_after = settings["notify_after"] if settings["notify"] else None
        hook = None
        if template:
            from ..engine.hooks import Hook

            hook = Hook(template, pass_token=bool(settings["hook_token"]))
        return cls(output, bool(settings["preview"]), hook, notify_after, time.monotonic())

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def saved(self, outcome: JobOutcome, first: int = 1, total: int | None = None) -> None:
        """Run the hook for each file of a finished job, numbered from `first` of `total` (a run's numbering)."""
        if self.hook is None or not outcome.saved:
            return
        made = outcome.input.to_payload() if outcome.input else {}
        for offset, item in enumerate(outcome.saved):
            values = {
                "path": item.path, "id": outcome.request_id, "i": first + offset, "n": total or len(outcome.saved),
                "prompt": made.get("prompt", ""), "aspect": made.get("aspect_ratio", ""), "format": made.get("output_format", ""),
            }
            result = self.hook.run(values)
            if result.problem is not None:
                self.output.warn(f"--on-done {result.argv[0]}: {result.problem} (for {item.path})")

    def show(self, paths: list[str]) -> None:
        if self.preview:
            for path in paths:
                self.output.preview(path)

    def finished(self, summary: str) -> None:
        """Ring and notify, if asked to and the wait was longer than notify_after."""
        if self.notify_after is None or self.elapsed < self.notify_after:
            return
        from ..engine.hooks import notify_desktop  # only now: 1-6 ms between the last file and the exit otherwise

        self.output.bell()
        notify_desktop("nanobanana", summary)
