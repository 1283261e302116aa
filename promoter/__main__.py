"""`python -m promoter` is the same as the `promote` command."""

import sys

from promoter.cli import main

sys.exit(main())
