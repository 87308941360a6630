"""`python -m runners run|export --request FILE`, `python -m runners versions`."""
import sys

from runners.cli import main

sys.exit(main())
