"""``python -m genauth_c``: the command line (see genauth_c.cli)."""
import sys

from genauth_c.cli import main

if __name__ == "__main__":
    sys.exit(main())
