"""`python -m engine.demo`: the demo headless (engine, gateway and demo bot, no console)."""

import sys

from engine.demo.scenario import main

sys.exit(main())
