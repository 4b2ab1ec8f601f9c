"""``python -m contracts``: the same as ``kontext-contract``."""

from kontext_mock.contracts.cli import main

raise SystemExit(main())
