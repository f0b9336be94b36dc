"""python -m nanocoder: the same as the nanocoder command."""
from .cli import main

raise SystemExit(main())
