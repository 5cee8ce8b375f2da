"""`nanobanana config`: defaults set once (aspect ratio, format, output directory, ...)."""

from typing import Annotated

import typer

from ..render.output import Output
from ..sanitise import shown
from ..stores.settings import SETTINGS
from .options import JsonOpt, make_output

KEYS_HELP = ", ".join(SETTINGS)

config_app = typer.Typer(
    help=f"Defaults you set once. Precedence: flag > environment > config file > built-in. Keys: {KEYS_HELP}.",
    no_args_is_help=True,
)

def _complete_key(incomplete: str) -> list[str]:
    return [key for key in SETTINGS if key.startswith(incomplete)]


KeyArg = Annotated[str, typer.Argument(help=f"One of: {KEYS_HELP}.", show_default=False, autocompletion=_complete_key)]


def _display(value: object) -> str:
    """A value from the config file or the environment, kept to its row (an on_done template may hold a newline)."""
    return "" if value is None else shown(value)


# "-5" is a value here, not an option: `config set timeout -5` must reach the value check.
@config_app.command("set", context_settings={"ignore_unknown_options": True})
def config_set(key: KeyArg, value: Annotated[str, typer.Argument(help="The new default.", show_default=False)]) -> None:
    """Save a default. The value is checked before it is saved.

    Examples:

      nanobanana config set aspect_ratio 9:16

      nanobanana config set output_dir ~/Pictures/nanobanana
    """
    from ..stores.settings import ConfigStore

    store = ConfigStore()
    setting, parsed = store.set(key, value)
    Output().info(f"{setting.key} = {parsed} (saved in {store.path})")


@config_app.command("get")
def config_get(key: KeyArg, json_: JsonOpt = False) -> None:
    """Print the value in effect for KEY and, on stderr, where it comes from.

    Example: nanobanana config get output_format
    """
    from ..stores.settings import Settings, canonical_key

    output = make_output(json_, False)
    setting = canonical_key(key)
    resolved = Settings().resolved(setting.key)
    output.emit({"key": setting.key, "value": resolved.value, "source": resolved.source}, [_display(resolved.value)])
    output.info(f"from {resolved.source}")


@config_app.command("unset")
def config_unset(key: KeyArg) -> None:
    """Remove a saved default, so the built-in one applies again.

    Example: nanobanana config unset aspect_ratio
    """
    from ..stores.settings import ConfigStore, canonical_key

    setting = canonical_key(key)
    removed = ConfigStore().unset(setting.key)
    Output().info(f"{setting.key} unset" if removed else f"{setting.key} was not set")


@config_app.command("list")
def config_list(json_: JsonOpt = False) -> None:
    """Every setting with the value in effect and its source.

    Example: nanobanana config list --json
    """
    from ..stores.settings import Settings

    output = make_output(json_, False)
    rows = Settings().all()
    width = max(map(len, rows))
    output.emit(
        {key: {"value": r.value, "source": r.source} for key, r in rows.items()},
        [f"{key:<{width}}  {_display(r.value):<32}  ({r.source})" for key, r in rows.items()],
    )


@config_app.command("path")
def config_path() -> None:
    """Print the config file's path (it may not exist yet).

    Example: $EDITOR "$(nanobanana config path)"
    """
    from ..stores.settings import ConfigStore

    Output().result_line(str(ConfigStore().path))
