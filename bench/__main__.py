"""``python -m bench``: see :mod:`bench.harness`."""

from bench.harness import main

raise SystemExit(main())
