"""``python -m pipeline``: the ``vidpipe`` command line."""

from pipeline.app.cli import main

raise SystemExit(main())
