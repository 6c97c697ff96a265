"""``python -m nanowire_utils.cli``: the same as the ``nanowire-utils`` command."""

import sys

from nanowire_utils.cli import main

sys.exit(main())
