"""``python -m cli``: the console script without its installed wrapper."""

from cli.app import app

app()
