"""Printing rich tables so that a file or a pipe gets them whole (run ids never folded)."""

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

_UNBOUNDED_WIDTH = 10_000


def print_table(table: Table, *, stderr: bool = False) -> None:
    """`table` on stdout (or stderr): at the terminal's width on a terminal, else at its
    natural width — rich would otherwise fold every cell to 80 columns in a log file."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        unbounded = console.options.update_width(_UNBOUNDED_WIDTH)
        natural = Measurement.get(console, unbounded, table).maximum
        console = Console(stderr=stderr, width=max(console.width, natural))
    console.print(table)
