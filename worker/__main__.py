"""``python -m worker`` is the ``realtime-worker`` command."""

import sys

from worker.cli import main

sys.exit(main())
