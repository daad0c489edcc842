"""``python -m langflix_scheduler`` runs the CLI."""

from .cli import main

raise SystemExit(main())
