"""`reid config show CONFIG [key=value ...]`."""

import argparse
from typing import Any

from rich.console import Console
from rich.syntax import Syntax

from reid_platform.config import flatten, load_config, to_yaml


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    config = commands.add_parser("config", help="inspect configs")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show", parents=[common], help="validate a config and print it resolved (base + overrides)"
    )
    show.add_argument("config", help="experiment YAML")
    show.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides")
    show.add_argument("--flat", action="store_true", help="print dotted key=value lines instead")
    show.set_defaults(handler=show_config)


def show_config(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    console = Console(soft_wrap=True)
    if args.flat:
        for key, value in flatten(config).items():
            console.print(f"{key}={value}", highlight=False, markup=False)
    else:
        console.print(Syntax(to_yaml(config), "yaml", background_color="default"))
    return 0
