"""`python -m engine.cli`: the same as the `perpguard` command's engine side (no console)."""

import sys

from engine.cli.main import main

sys.exit(main())
