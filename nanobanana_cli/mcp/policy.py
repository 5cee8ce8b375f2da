"""What the user allowed when starting the server: how much it may spend, and which files it may read.

An agent chooses the arguments of every tool call, so these limits are checked on the server
side, on every call, before anything is sent or read. Nothing here imports the SDK or the CLI's
engine: the limits are plain values, tested on their own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError


class BudgetExceeded(UsageError):
    """A submit the server's lifetime budget does not cover; nothing was sent."""


class OutsideAllowedDirectories(UsageError):
    """A path the agent named that leads outside the directories the user allowed."""


@dataclass
class Budget:
    """`--max-cost` and `--max-images` over the server's whole lifetime, shared by concurrent calls.

    A submit reserves its images and estimated cost before it is sent. Only a submit that surely
    never reached the API gives its reservation back: a job that was created, or may have been
    (an uncertain submit), stays counted, whatever became of it.
    """

    max_cost: float | None = None
    max_images: int | None = None
    spent_cost: float = 0.0
    spent_images: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def limited(self) -> bool:
        return self.max_cost is not None or self.max_images is not None

    def reserve(self, images: int, price_per_image: Callable[[], float | None]) -> Reservation:
        """Count `images` (and their estimated cost) against the budget, or refuse with what is left.

        The price is asked for only with --max-cost, and outside the lock: it may be a request.
        """
        price = price_per_image() if self.max_cost is not None else None
        with self._lock:
            if self.max_images is not None and self.spent_images + images > self.max_images:
                left = self.max_images - self.spent_images
                raise BudgetExceeded(
                    f"this request is {images} image(s), but only {left} of this server's --max-images "
                    f"{self.max_images} are left; nothing was submitted",
                    hint="ask for fewer images, or ask the user to restart the server with a larger --max-images",
                )
            cost = 0.0
            if self.max_cost is not None:
                if price is None:
                    raise BudgetExceeded(
                        "the server has a --max-cost but the model's price is unknown (the catalog did not say); "
                        "nothing was submitted",
                        hint="check model_info, or ask the user to restart the server without --max-cost",
                    )
                cost = round(images * price, 4)
                if self.spent_cost + cost > self.max_cost + 1e-9:
                    money_left = max(self.max_cost - self.spent_cost, 0.0)
                    raise BudgetExceeded(
                        f"this request would cost about ${cost:.4f} ({images} image(s) × ${price:.4f}), but only "
                        f"${money_left:.4f} of this server's --max-cost ${self.max_cost:.4f} is left; nothing was submitted",
                        hint="ask for fewer images, or ask the user to restart the server with a larger --max-cost",
                    )
            self.spent_images += images
            self.spent_cost += cost
            return Reservation(self, images, cost)

    def _give_back(self, images: int, cost: float) -> None:
        with self._lock:
            self.spent_images -= images
            self.spent_cost -= cost

    def to_dict(self) -> dict[str, float | int | None]:
        with self._lock:
            return {
                "max_cost": self.max_cost, "spent_cost": round(self.spent_cost, 4),
                "max_images": self.max_images, "spent_images": self.spent_images,
            }


@dataclass
class Reservation:
    budget: Budget
    images: int
    cost: float

    def not_sent(self) -> None:
        """The submit never reached the API (refused, or no connection was made): nothing was billed."""
        self.budget._give_back(self.images, self.cost)


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


@dataclass(frozen=True)
class ReadableFiles:
    """The directories files may be read from: `--allow-read` ones and the output directory.

    Symbolic links are resolved before the check, so a link inside an allowed directory that
    points elsewhere is refused like the place it points to.
    """

    directories: tuple[Path, ...]

    @classmethod
    def of(cls, directories: list[Path]) -> ReadableFiles:
        resolved = []
        for directory in directories:
            real = _resolved(directory.expanduser())
            if not real.is_dir():
                raise UsageError(f"--allow-read {str(directory)!r} is not a directory", hint="pass an existing directory")
            resolved.append(real)
        return cls(tuple(dict.fromkeys(resolved)))

    def check(self, raw: str, *, field: str = "path") -> Path:
        """The file `raw` names (relative to the server's current directory), if it is inside an allowed directory."""
        if not raw.strip() or "\0" in raw:
            raise UsageError(f"{field}: expected the path of a file")
        path = _resolved(Path(raw).expanduser())
        if not any(path.is_relative_to(directory) for directory in self.directories):
            allowed = ", ".join(str(directory) for directory in self.directories)
            raise OutsideAllowedDirectories(
                f"{field}: {raw!r} is outside the directories this server may read ({allowed}); nothing was read",
                hint="use a file inside one of them, or ask the user to restart the server with --allow-read DIR",
            )
        if not path.is_file():
            raise UsageError(f"{field}: {raw!r} is not a file")
        return path

    def allows(self, path: Path) -> bool:
        real = _resolved(path)
        return any(real.is_relative_to(directory) for directory in self.directories)
