"""``python -m benchmarks``: every benchmark, one table each (see run.py)."""

from .run import main

raise SystemExit(main())
