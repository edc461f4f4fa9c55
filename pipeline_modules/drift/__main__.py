"""`python -m pipeline_modules.drift`: the same as `bert-imdb-drift`."""

import sys

from pipeline_modules.drift.cli import main

sys.exit(main())
