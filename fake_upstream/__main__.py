"""``python -m fake_upstream --port 9100 --script script.yaml``."""

import sys

from fake_upstream.cli import main

sys.exit(main())
