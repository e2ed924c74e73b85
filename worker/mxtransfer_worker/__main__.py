"""``python -m mxtransfer_worker`` runs the worker command line."""

from .cli import console

console()
