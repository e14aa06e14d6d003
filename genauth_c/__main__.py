"""``python -m genauth_c``: the command line (see genauth_c.cli)."""
import sys

from genauth_c.cli import main

sys.exit(main())
