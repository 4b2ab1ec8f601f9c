"""``python -m contracts``: the same as ``kontext-contract``."""

from .cli import main

raise SystemExit(main())
