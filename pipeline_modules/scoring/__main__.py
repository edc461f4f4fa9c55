"""``python -m pipeline_modules.scoring``: the same command as ``bert-imdb-score``."""

import sys

from pipeline_modules.scoring.cli import main

sys.exit(main())
