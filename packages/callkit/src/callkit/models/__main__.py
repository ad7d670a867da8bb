import sys

from callkit.models.cli import main

sys.exit(main())
