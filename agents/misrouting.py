"""Records found on a partition their key does not hash to: counted, reported, applied.

The event contract (README.md): the engine is told the producers' partitioner,
and a record on a partition its key does not hash to under it is counted and
reported, never silently mis-merged. Such a record is still applied where it
is: a producer with another consistent partitioner puts all of a customer's
events on one partition, so the customer's record stays whole there, and is
already where it belongs once LIFECYCLE_INPUT_PARTITIONER is corrected. What
breaks is what crosses keys (identity merges, ``/customers/{id}``), which the
counter and the warning report. Dead-lettering instead would drop every
customer of the other partitions, their state and their triggers, until a
replay.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agents.metrics import EngineMetrics
from streams.producer import SCHEMES, Scheme, key_partition, scheme_of
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.faust_compat import FaustMessage

__all__ = ["RouteCheck", "fitting_scheme", "misrouting_warning"]

log = logging.getLogger(__name__)


def fitting_scheme(key: bytes, partition: int, partitions: int) -> Scheme | None:
    """The scheme that puts ``key`` on ``partition``, if one does (murmur2 first)."""
    for scheme in SCHEMES:
        if key_partition(key, partitions, scheme) == partition:
            return scheme
    return None


def misrouting_warning(
    topic: str, partition: int, configured: Scheme, fitting: Scheme | None
) -> str:
    """What the worker says, once per topic-partition: the setting and the scheme that
    would fit, never the key (customer ids are personal data)."""
    if fitting is not None:
        advice = f"they fit {fitting}: set LIFECYCLE_INPUT_PARTITIONER={fitting}"
    else:
        advice = "neither murmur2 nor crc32 fits: set LIFECYCLE_INPUT_PARTITIONER=repartition"
    return (
        f"{topic}[{partition}]: records whose key belongs on another partition under "
        f"LIFECYCLE_INPUT_PARTITIONER={configured} ({advice}); they are applied where they "
        "are, but identity merges of those customers fail; lifecycle_misrouted_total "
        "counts them"
    )


class RouteCheck:
    """The misrouting check of one worker (nothing to check in ``repartition`` mode: the
    engine partitions the re-keyed copies itself)."""

    def __init__(self, settings: Settings, metrics: EngineMetrics) -> None:
        self.enabled = not settings.repartitioned
        self.scheme = scheme_of(settings.input_partitioner)
        self.partitions = settings.partitions
        self.metrics = metrics
        self.warned: set[tuple[str, int]] = set()

    def check(self, message: FaustMessage) -> bool:
        """Whether ``message`` (a keyed inbound record) sits where its key hashes to;
        if not, count it and warn once for its topic-partition."""
        if not self.enabled:
            return True
        partition = message.partition
        key = message.key
        assert key is not None  # keyed: ``check_routing`` refused the others
        if key_partition(key, self.partitions, self.scheme) == partition:
            return True
        topic = message.topic
        self.metrics.misroute(topic)
        if (topic, partition) not in self.warned:
            self.warned.add((topic, partition))
            fitting = fitting_scheme(key, partition, self.partitions)
            log.warning(misrouting_warning(topic, partition, self.scheme, fitting))
        return False
