"""The ``lifecycle`` command line: every command, the ``lifecycle dev`` demo, and what
only they use. The worker a command starts lives in ``agents``."""
