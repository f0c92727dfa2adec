"""`python -m ghostpost` runs the CLI."""

from ghostpost.cli import run

run()
