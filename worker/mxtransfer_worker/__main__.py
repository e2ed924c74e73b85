"""``python -m mxtransfer_worker`` runs the worker command line."""

import sys

from .cli import main

sys.exit(main())
