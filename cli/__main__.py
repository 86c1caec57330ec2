"""``python -m cli ARGS``: the ``lifecycle`` command without its console script."""

from cli.main import main

main()
