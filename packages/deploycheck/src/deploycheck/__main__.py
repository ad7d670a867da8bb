import sys

from deploycheck.cli import main

sys.exit(main())
