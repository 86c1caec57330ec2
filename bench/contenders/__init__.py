"""The benchmark's contenders besides the engine, each a process of its own.

Each one consumes the same inbound topics as the engine under a consumer
group of its own and commits offsets as it goes, so the harness measures all
of them the same way: from the group's committed offsets on the broker.
Run as ``python -m bench.contenders.<name> '<json config>'`` (``Contender``).
"""
