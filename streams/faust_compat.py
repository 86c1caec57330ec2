"""Everything the engine borrows from the insides of faust-streaming, mode and aiokafka.

This is the one module that names a private attribute of those libraries
(ruff's SLF001 is on everywhere else). Each one is listed in
``PRIVATE_NAMES``, which ``tests/unit/test_faust_compat.py`` checks against the
installed releases, and the test also checks that this module uses no other;
the copy of Faust's fetch loop is checked by the digest of its source. Each
workaround and why it exists:

The hand-off (``HandOffConsumer``; ``Consumer._drain_messages``, ``_read_offset``,
``_commit_every``, ``_n_acked``, ``_add_gap``, mode's ``Service._stopped``,
``Conductor._tp_index`` and ``_tp_to_callback_lock``, ``App._new_transport``;
installed by ``streams.app``). Faust's fetch loop passes each message on with
``wait_first(callback, suspend_flow.wait())``: four tasks, an ``asyncio.wait``
and three cancellations per message, so that a callback blocked on a full
stream buffer or a suspended flow can be abandoned at a rebalance. Almost
always nothing can block it; the engine's consumer then awaits the callback
directly, and under load waits for room for many messages at once. Faust has
no hook for it: the loop is copied whole (Faust's bookkeeping stays as it
expects), and the consumer class is installed through the app's transport
factory before anything uses it.

The engine's own offset commits (``commit_exactly``: the aiokafka driver's
``Consumer._commit``; for the agent's ``commit_offsets``). Faust's
``commit()`` commits the offsets it saw acked since the last rebalance, up to
the first gap it does not know of: after a rebalance it skipped a single unacked
offset and committed past events never applied (the two-worker rebalance test
lost prospects' merges that way; faust-streaming issue 606 is the same hazard
with concurrency > 1). The engine commits only what is durable, offsets it
chooses itself, with ``_commit``: the plain commit, without Faust's ack filter,
its producer flush or its tables' ``on_commit`` (the engine waits for its own
sends, and tables defer persisted offsets to the commit only under exactly-once;
the engine runs at least once).

No Faust acks on the inbound topics (``acks=False`` in ``streams.app``, as the
agent consumes them under ``noack()``; no private name). The agent acks nothing,
but Faust's stream still acks a message it skips (flow control inactive, or
fetched in an older rebalance generation), and on an acking topic
``Consumer.ack`` records that offset, which Faust's periodic ``commit()`` then
commits: past the records the agent has not applied, or behind what the engine
committed. Declared with ``acks=False`` the topics record no acks, so Faust
commits none of their offsets. Nothing else of Faust needs the acks: the fetch
loop's gaps (``_add_gap``, for acking topics only) are only read by that same
ack bookkeeping, the unacked-message set only by ``stream_wait_empty`` (off),
and the livelock detector only logs (for an acking topic whose fetch is behind
its highwater, a false "stream idle": the dropped monitor keeps no stream
times).

Gap-free delivery (``streams.delivery``; no private name, but Faust's behaviour).
After a rebalance Faust can hand over records fetched before its seek back to
the committed offset, and then drop the earlier ones that seek brought: they
sit below the read offset it just moved, and its fetch loop drops what precedes
that. So the agent applies a partition's records strictly in offset order and
seeks back (``seek_wait``) when one comes ahead; a partition fetched past its
expected offset that delivers nothing (``fetch_positions``) is sought back too.
The seek sets Faust's read offset back, but the fetch loop may still hold records
of that partition fetched before the seek (under a backlog it does: it waits for
room in a full stream buffer with the rest of a fetch in hand); handing them
over moves the read offset past the seek again, and Faust's loop then drops
every record the seek brings back: a survivor's partitions can wait many seconds
after a takeover that way, seeking again every second. So the copied loop
(``HandOffConsumer._drain_messages``) hands over every record of the topics the
engine orders itself (``lean_hand_off``'s ``ordered``), wherever Faust's read
offset stands, and ``streams.delivery`` skips what was applied before.

The aiokafka producer (``kafka_producer``: ``Producer._ensure_producer``; for
the agent's ``commit`` and ``_dispatch_outputs``). Outputs and changelog records
go out as record batches (``create_batch``/``send_batch``, ``streams.outbound``,
``streams.table_writes``); Faust's producer sends one message at a time, each
with a future, a callback chain and sensor calls. The producer is idempotent
(``IdempotentProducer``: ``Producer._settings_extra``), so a batch aiokafka sends
again after a broker fault is written once.

The aiokafka consumer in Faust's consumer thread (``in_consumer_thread``,
``fetched``, ``fetch_positions``, ``buffered``: ``Consumer._thread``,
``AIOKafkaConsumerThread._ensure_consumer``, aiokafka's ``_subscription``, and its
``_fetcher`` and the fetcher's ``_records`` for ``buffered``; for
``streams.fetching`` and the agent's merge and stall check). Fetching is paused
in aiokafka, in the thread that runs it: Faust's ``pause_partitions`` edits the
set of active partitions its fetch loop checks every record against and its flow
control edits in place, so pausing dropped records already fetched and raced
with the flow control (records dropped, a partition never fetched again);
aiokafka drops only what it has not handed over and fetches on from the same
position. The fetch position per
partition (``Delivery.stalled``) is an int of aiokafka's subscription state,
read from the agent's loop without a round trip to the thread; Faust's
``position()`` is such a round trip.

The fetch answers the merge judges (``FetchAnswers``, ``fetched``, ``appended_by``:
the fetcher's ``_client``). A topic with nothing queued lets a later event of
another topic go first only once a highwater read after that event was appended
shows nothing more to read. aiokafka keeps a partition's highwater and the time
its answer came, not when the request left; and one answer is no snapshot: the
broker reads its partitions one after another, so an event appended while it
reads may miss from a partition read early and be followed, in a partition read
later, by an event published after it (seen after a broker's restart: a browse
applied after a cart published after it). The fetcher's client is wrapped so
each fetch request's send time and answer time are kept with the highwaters it
brought.

Changelogs fetched only when Faust reads them (``HandOffConsumer.pause_partitions``
and ``resume_partitions``; the names above). Faust pauses a partition only in its
own set of active partitions, and aiokafka fetches every partition assigned to it:
at each assignment it fetched every changelog partition from its start (up to
1 MiB each, what the bulk read then reads again), and the answer stayed resident
after Faust's seek dropped it: aiokafka's connection keeps its last answer until
the next, and fetched records sit in reference cycles that a worker's rare
collections (``agents.worker``) free late. Faust's consumer pauses a changelog
partition in aiokafka too whenever Faust pauses it, and resumes it when Faust
does (a recovery the bulk read left unfinished); ``_match_paused`` keeps
aiokafka's paused set to these and the agent's holds together.

Faust's current event (``in_partition_of``: ``faust.streams._current_event``;
for ``streams.table_writes``). A Faust store writes to the partition of
the current event's message, a context variable that Faust sets only while its
stream yields; a batch writes after its events were handled, so each write sets
its own event. Faust's ``current_event()`` only reads it.

The partitions of a rocksdb store (``partition_stores``: ``Store._dbs`` of
``faust.stores.rocksdb``; for the agent's ``_partition_holding`` and
``stored_by_partition``). Faust's store keeps one rocksdict database per
partition but iterates them only all together: the timer rebuild needs each
record's partition exactly, whatever partitioner the shop's producers use, and
``/customers/{id}`` the partition that holds a key. A record is read from the
database of the current event's partition (``read_stored``: the store's
``_db_for_partition``), where Faust's ``get`` would look for it, in one read
instead of Faust's two.

The recovery's bulk read (``BulkRecovery``, ``BulkTableManager``:
``Recovery._build_offsets``, ``TableManager._recovery`` and ``_update_channels``;
installed by ``streams.app`` through Faust's ``TableManager`` setting). Faust
recovers a table by fetching its changelog through the app's consumer and passing
each record through its conductor, an event, a queue, an ``asyncio.wait_for`` and
a pass over every changelog partition's highwater: 50 to 80 µs a record, most of
a fresh worker's time to ``/ready``. Once Faust has the offsets it would start
reading from, ``BulkRecovery`` reads each active changelog partition up to its
highwater with a consumer of its own (no group) and applies the records through
the table's own ``apply_changelog_batch``, thousands at a time, so the store and
its persisted offsets are written as Faust writes them; Faust then finds nothing
left to read. Whatever the bulk read did not finish (a failure is logged) Faust
reads as before. ``BulkTableManager.on_start`` is Faust's without the second it
sleeps before starting its tables (checked by the digest of its source, as the
fetch loop's copy is).

One memory budget for every RocksDB database of the process (``BudgetStore``,
``BudgetOptions``; no private name; installed by ``streams.app`` through Faust's
registry of stores, ``budget_store_url``). Faust opens one database per table and
partition, each with a block cache and memtables of its own, so a worker's memory
grows with the partitions it holds. ``BudgetOptions`` gives each database Faust's
options with the process's one block cache and one write buffer manager, which
flushes memtables once all of them together near ``budget_write_buffers``.

lz4's fast mode (``fast_lz4``; no private name: the ``lz4_encode`` that aiokafka's
record batch builders call, in their modules). aiokafka compresses every lz4 batch at
level 9, lz4's high-compression mode, several times the CPU of its fast mode (level 1,
librdkafka's default) for frames only a little smaller, and a worker compresses every
output and changelog batch (bench/RESULTS.md has the figures). Brokers and consumers
read both alike; aiokafka has no setting for the level.

What an aiokafka client was built with (``client_connection``: ``_client`` and
``AIOKafkaClient``'s ``_bootstrap_servers``, ``_security_protocol``,
``_ssl_context``, ``_sasl_*``; for ``tests/unit/test_kafka_clients.py``).
aiokafka keeps it private; the test reads it back to show that the engine's
client factories pass every setting through.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import hashlib
import inspect
import logging
import sys
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import aiokafka.record.default_records
import cramjam
import faust
import faust.stores
import rocksdict
from aiokafka.consumer.fetcher import FetchResult
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import _current_event, current_event
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.consumer import Consumer as FaustBaseConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from streams.kafka import track_topic
from streams.ports import put_or_delete

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from rocksdict import Rdict

    from streams.ports import RecordBatch

__all__ = [
    "COPIED_LOOP_DIGEST",
    "COPIED_TABLES_START_DIGEST",
    "FETCH_WAIT_MS",
    "PRIVATE_NAMES",
    "STORE_SCHEME",
    "BudgetOptions",
    "BudgetStore",
    "BulkRecovery",
    "BulkTableManager",
    "FaustConsumer",
    "FaustEvent",
    "FaustMessage",
    "FaustProducer",
    "FaustStore",
    "FetchAnswers",
    "HandOffConsumer",
    "HandOffTransport",
    "RawSchema",
    "answers_of",
    "appended_by",
    "budget_store_url",
    "buffered",
    "client_connection",
    "commit_exactly",
    "fast_lz4",
    "fetch_answers",
    "fetch_loop_digest",
    "fetch_positions",
    "fetched",
    "in_consumer_thread",
    "in_partition_of",
    "kafka_producer",
    "lean_hand_off",
    "lean_recovery",
    "lz4_builders",
    "lz4_fast",
    "match_paused",
    "partition_stores",
    "read_stored",
    "scan_uncached",
    "subscription_lock",
    "tables_start_digest",
]

PRIVATE_NAMES: dict[str, tuple[str, ...]] = {
    "mode.Service": ("_stopped",),
    "faust.App": ("_new_transport",),
    "faust.streams": ("_current_event",),
    "faust.transport.conductor.Conductor": ("_tp_index", "_tp_to_callback_lock"),
    "faust.transport.consumer.Consumer": (
        "_add_gap",
        "_commit_every",
        "_drain_messages",
        "_n_acked",
        "_read_offset",
    ),
    "faust.transport.drivers.aiokafka.Consumer": ("_commit", "_thread"),
    "faust.transport.drivers.aiokafka.AIOKafkaConsumerThread": ("_ensure_consumer",),
    "faust.transport.drivers.aiokafka.Producer": ("_ensure_producer", "_settings_extra"),
    "faust.stores.rocksdb.Store": ("_db_for_partition", "_dbs"),
    "faust.tables.manager.TableManager": ("_recovery", "_update_channels"),
    "faust.tables.recovery.Recovery": ("_build_offsets",),
    "aiokafka.AIOKafkaConsumer": ("_client", "_fetcher", "_subscription"),
    "aiokafka.consumer.fetcher.Fetcher": ("_client", "_fetch_max_wait_ms", "_records"),
    "aiokafka.admin.AIOKafkaAdminClient": ("_client",),
    "aiokafka.AIOKafkaClient": (
        "_bootstrap_servers",
        "_sasl_mechanism",
        "_sasl_plain_password",
        "_sasl_plain_username",
        "_security_protocol",
        "_ssl_context",
    ),
}
"""Owner (a class, or a module) -> the private names of it this module uses."""

COPIED_LOOP_DIGEST = "44a2500309e83c63"
"""The digest (``fetch_loop_digest``) of the Faust fetch loop ``HandOffConsumer`` copies."""

COPIED_TABLES_START_DIGEST = "365dd25fbc0e0684"
"""The digest (``tables_start_digest``) of the ``TableManager.on_start`` that
``BulkTableManager`` repeats without its sleep."""

FETCH_WAIT_MS = 25
"""How long a fetch request of a worker's consumer waits for records before the broker
answers without (Faust builds it with 1,500 ms). A message whose merge waits for a
fetch answer sent after its own (``FetchAnswers``) waits for the next answer: with no
other traffic, up to this long."""

A = TypeVar("A")

log = logging.getLogger(__name__)


def fetch_loop_digest() -> str:
    """The digest of the installed Faust's ``Consumer._drain_messages``: a release that
    changes it must be read before it is run, since the copy would silently drop
    whatever it added."""
    return _source_digest(FaustBaseConsumer._drain_messages)


def tables_start_digest() -> str:
    """The digest of the installed Faust's ``TableManager.on_start``, which
    ``BulkTableManager.on_start`` repeats: checked as the fetch loop's is."""
    return _source_digest(TableManager.on_start)


def _source_digest(function: Callable[..., Any]) -> str:
    source = inspect.getsource(function)
    return hashlib.sha256(source.encode()).hexdigest()[:16]


class FaustMessage(Protocol):
    """What the engine reads of a record Faust hands over (``faust.types.Message``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def tp(self) -> TP: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> float:
        """Seconds since the epoch (Kafka's milliseconds, divided by Faust)."""
        ...

    @property
    def headers(self) -> Mapping[str, bytes] | Sequence[tuple[str, bytes]] | None: ...


class FaustEvent(Protocol):
    """A Faust stream event: the engine reads only its message, and hands the event
    itself to Faust's stores (``in_partition_of``)."""

    @property
    def message(self) -> FaustMessage: ...


# The aiokafka clients under Faust's.


def kafka_producer(producer: Any) -> AIOKafkaProducer:
    """The aiokafka producer of Faust's ``producer`` (started with it)."""
    return producer._ensure_producer()


async def commit_exactly(consumer: Any, offsets: Mapping[TP, int]) -> bool:
    """Commit ``offsets`` as they are for Faust's ``consumer``'s group; whether the
    broker took them (partitions no longer assigned are left out)."""
    committed: bool = await consumer._commit(offsets)
    return committed


def _with_client(thread: Any, fun: Callable[[AIOKafkaConsumer, A], None], arg: A) -> None:
    fun(thread._ensure_consumer(), arg)


def in_consumer_thread(
    consumer: Any, fun: Callable[[AIOKafkaConsumer, A], None], arg: A
) -> Awaitable[None]:
    """Run ``fun(client, arg)`` in the thread of Faust's ``consumer``, on its aiokafka
    client. The client is asked for there, when the call runs: a stopped consumer
    fails the call, not its caller."""
    thread = consumer._thread
    return cast(Awaitable[None], thread.call_thread(_with_client, thread, fun, arg))


class FetchAnswers:
    """The client of aiokafka's fetcher, as the fetcher uses it, keeping for every
    partition the highwater of its freshest answer without error (a fetch's, or an
    ask's for the ends kept through ``keep``), when the request that read it was sent,
    and when the answer came (``time.monotonic``).

    The broker reads a partition after the request arrives, so the highwater counts
    every record appended before the send; a record below a highwater was appended
    before that answer came. Every other call goes to the client itself."""

    RISES = 64
    """Highwater rises kept per partition (``appended_by``)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.latest: dict[tuple[str, int], tuple[int, float, float]] = {}
        self.rises: dict[tuple[str, int], deque[tuple[int, float]]] = {}
        """Per partition, each rise of its highwater, and when the answer showing it came."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def send(self, node_id: int, request: Any, **kwargs: Any) -> Any:
        sent = time.monotonic()
        response = await self.client.send(node_id, request, **kwargs)
        if isinstance(request, FetchRequest):
            answered = time.monotonic()
            keep, rises = self.keep, self.rises
            for topic, partitions in response.topics:
                for partition, error_code, highwater, *_ in partitions:
                    if error_code == 0:
                        tp = (topic, partition)
                        keep(tp, highwater, sent, answered)
                        seen = rises.get(tp)
                        if seen is None:
                            seen = rises[tp] = deque(maxlen=self.RISES)
                        if not seen or highwater > seen[-1][0]:
                            seen.append((highwater, answered))
        return response

    def keep(self, tp: tuple[str, int], highwater: int, sent: float, answered: float) -> None:
        """Keep ``tp``'s highwater read by a request sent at ``sent``, unless one sent
        later is kept already (answers can overtake each other). Fetch answers are kept
        in the consumer's thread and asks' in the worker's: a race between the two keeps
        the older answer, which is still true, only less fresh."""
        prior = self.latest.get(tp)
        if prior is None or prior[1] <= sent:
            self.latest[tp] = (highwater, sent, answered)

    def appended_by(self, tp: tuple[str, int], offset: int) -> float:
        """A time by which the record at ``offset`` of ``tp`` had been appended: when the
        first answer kept whose highwater passed it came, or now if none did. A backlog's
        records were appended long before the answers that bring them."""
        seen = self.rises.get(tp)
        if seen:
            at = bisect.bisect_right(seen, offset, key=lambda rise: rise[0])
            if at < len(seen):
                return seen[at][1]
        return time.monotonic()


def answers_of(client: AIOKafkaConsumer, fetch_wait_ms: int | None = None) -> FetchAnswers | None:
    """The ``FetchAnswers`` of an aiokafka consumer, wrapped around its fetcher's client
    on the first call, when its fetch requests also start to wait at most
    ``fetch_wait_ms`` (if given); None before the consumer has started its fetcher."""
    fetcher = client._fetcher
    if fetcher is None:
        return None
    inner = fetcher._client
    if isinstance(inner, FetchAnswers):
        return inner
    answers = fetcher._client = FetchAnswers(inner)
    if fetch_wait_ms is not None:
        fetcher._fetch_max_wait_ms = fetch_wait_ms
    return answers


def fetch_answers(consumer: Any) -> FetchAnswers | None:
    """``answers_of`` the aiokafka consumer in Faust's ``consumer``, whose fetch requests
    wait at most ``FETCH_WAIT_MS`` for records once wrapped."""
    thread: Any = getattr(consumer, "_thread", None)
    try:
        client = thread._ensure_consumer()
    except (AttributeError, AssertionError):  # not started, or stopped
        return None
    return answers_of(client, FETCH_WAIT_MS)


def appended_by(consumer: Any, tp: TP, offset: int) -> float:
    """``FetchAnswers.appended_by`` of Faust's ``consumer``: a time (``time.monotonic``)
    by which its record at ``offset`` of ``tp`` had been appended (now, without
    answers)."""
    answers = fetch_answers(consumer)
    return time.monotonic() if answers is None else answers.appended_by(tp, offset)


def fetched(consumer: Any, tp: TP) -> tuple[int, float] | None:
    """The highwater of ``tp`` in its last fetch answer, in Faust's ``consumer``, and
    when (``time.monotonic``) the request that read it was sent: it counts every record
    appended to ``tp`` before then. None before an answer."""
    answers = fetch_answers(consumer)
    found = None if answers is None else answers.latest.get(tp)
    return None if found is None else (found[0], found[1])


def buffered(consumer: Any, tp: TP) -> bool:
    """Whether aiokafka, in Faust's ``consumer``, holds records of ``tp`` it fetched and
    has not yet returned to Faust. It fetches no more of ``tp`` until it has, so the
    highwater and time ``fetched`` gives stay as they were meanwhile."""
    thread: Any = getattr(consumer, "_thread", None)
    try:
        records = thread._ensure_consumer()._fetcher._records
    except (AttributeError, AssertionError):  # not started, or stopped
        return False
    found = records.get(tp)
    return isinstance(found, FetchResult) and found.has_more()


def fetch_positions(consumer: Any, tps: Iterable[TP]) -> dict[TP, int]:
    """The next fetch offset of Faust's ``consumer`` for each of ``tps`` it has one for
    (aiokafka's subscription state, an int read from this thread)."""
    thread: Any = getattr(consumer, "_thread", None)
    try:
        assignment = thread._ensure_consumer()._subscription.subscription.assignment
    except (AttributeError, AssertionError):  # not started, or no assignment now
        return {}
    positions = {}
    for tp in tps:
        state = assignment.state_value(tp)
        if state is not None and state.has_valid_position:
            positions[tp] = int(state.position)
    return positions


def client_connection(client: Any) -> dict[str, Any]:
    """What an aiokafka producer, consumer or admin client connects with: servers,
    security protocol, TLS context and SASL login (the producer's client is public)."""
    inner = getattr(client, "client", None) or client._client
    return {
        "bootstrap_servers": inner._bootstrap_servers,
        "security_protocol": inner._security_protocol,
        "ssl_context": inner._ssl_context,
        "sasl_mechanism": inner._sasl_mechanism,
        "sasl_plain_username": inner._sasl_plain_username,
        "sasl_plain_password": inner._sasl_plain_password,
    }


# Faust's tables.


@contextmanager
def in_partition_of(event: FaustEvent) -> Iterator[None]:
    """Make ``event`` Faust's current event while a batch's writes run, or while a
    partition's merge releases what it held outside that partition's message.

    A Faust store reads and writes the partition of the stream's current event
    (``faust.streams.current_event``); a batch writes after its events have
    been handled, so each write names the event whose partition it belongs to.
    """
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]  # Faust's EventT
    try:
        yield
    finally:
        _current_event.reset(token)


def read_stored(table: Any, key: bytes) -> bytes | None:
    """``table.get(key)`` of a table of raw bytes, in one rocksdb read.

    Faust's ``get`` asks the store whether it holds the key, then reads it: two
    reads of the current event's partition, each finding that event, and an
    entry in the store's key index. This reads that partition's database once;
    without a current event, or in a memory store, it is Faust's ``get``.
    """
    store = table.data
    event = current_event()
    if event is None or partition_stores(store) is None:
        found: bytes | None = table.get(key)
        return found
    raw: bytes | None = store._db_for_partition(event.message.partition).get(key)
    return raw


STORE_SCHEME = "lifecycle-rocksdb"
"""The scheme of ``BudgetStore``'s URL (``budget_store_url``)."""


def budget_store_url() -> str:
    """The store URL (Faust's ``store`` setting) of ``BudgetStore``: Faust picks a
    table's store class by the scheme of that URL, in its registry of stores."""
    faust.stores.STORES.aliases[STORE_SCHEME] = f"{__name__}:BudgetStore"
    return f"{STORE_SCHEME}://"


class BudgetStore(RocksDBStore):
    """Faust's RocksDB store, with every store of the process drawing on one block
    cache and one budget of memtables (``BudgetOptions``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.use_rocksdict:
            msg = "BudgetStore needs rocksdict, the driver the engine installs"
            raise TypeError(msg)
        self.rocksdb_options = BudgetOptions(**(self.options or {}), use_rocksdict=True)


class BudgetOptions(RocksDBOptions):
    """Faust's options for one partition's database, but with the block cache and
    the memtables' budget shared by every database of the process.

    Faust gives each database a cache and memtables of its own, so a worker's
    memory grows with the partitions it holds: two tables on six partitions are
    twelve databases, whose 1 MiB memtables alone were about 24 MiB of a recovered
    worker (over 1,000 B a customer at 20,000 customers), and 60 partitions would
    be ten times that. Here ``block_cache_size`` is the size of the one cache and
    ``budget_write_buffers`` (an extra option, in bytes) caps all memtables
    together: RocksDB's write buffer manager flushes the database being written
    once the total nears it. Nothing else differs from Faust's options."""

    def as_options(self) -> Any:
        options = super().as_options()
        table = rocksdict.BlockBasedOptions()  # Faust's, but with the shared cache
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(self.shared_cache())
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.shared_write_buffers())
        return options

    def shared_cache(self) -> rocksdict.Cache:
        """The block cache of every database with this ``block_cache_size``."""
        return _block_cache(self.block_cache_size)

    def shared_write_buffers(self) -> rocksdict.WriteBufferManager:
        """The memtable budget of every database with this ``budget_write_buffers``."""
        return _write_buffers(int(self.extra_options["budget_write_buffers"]))


@functools.cache
def _block_cache(size: int) -> rocksdict.Cache:
    """The process's block cache of ``size``: one, unless settings differ between apps."""
    return rocksdict.Cache(size)


@functools.cache
def _write_buffers(size: int) -> rocksdict.WriteBufferManager:
    """The process's memtable budget of ``size``; it never stalls writers, a flush is
    all it asks for."""
    return rocksdict.WriteBufferManager(size, False)


def partition_stores(store: Any) -> Mapping[int, Rdict] | None:
    """The database of each partition of a table's rocksdb ``store``; None for a
    memory store (one dict for all partitions)."""
    dbs: Mapping[int, Rdict] | None = getattr(store, "_dbs", None)
    return dbs


# The hand-off from Faust's fetch loop to the agents.

ROOM_POLL = 0.005
"""Seconds between looks at a full stream buffer: a full buffer is seconds of work."""


def subscription_lock(app: Any) -> asyncio.Lock:
    """The lock Faust holds while it rebuilds its topic-partition index (a subscription
    change): a message handed over meanwhile could find no stream."""
    lock: asyncio.Lock = app.topics._tp_to_callback_lock
    return lock


class HandOffConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with a direct hand-off when nothing can block it.

    Under load the stream buffer is full most of the time (the agent is slower
    than the fetch), and Faust then hands each message over as soon as one slot
    is free: a task switch and a ``put`` task per message. So a full buffer is
    waited on once, until it has drained to Faust's pressure-drop size
    (``wait_for_room``). The benchmark's counting agent (``bench.contenders``,
    variants ``lean-hand-off`` and ``engine``) measures what it is worth.
    """

    held: AbstractSet[TP] = frozenset()
    """The inbound partitions the agent holds back (``streams.fetching``)."""

    quiet: frozenset[TP] = frozenset()
    """The changelog partitions Faust has paused, which aiokafka then does not fetch."""

    @property
    def ordered(self) -> frozenset[str]:
        """The topics whose records the engine applies in offset order itself
        (``streams.delivery``; its transport's): the fetch loop hands over each of their
        records, even one below Faust's read offset (why: the module's docstring,
        "Gap-free delivery")."""
        return cast(HandOffTransport, self.transport).ordered

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.quiet_calls: set[asyncio.Future[None]] = set()
        """Calls under way that pause or resume changelogs, kept so none is collected
        unfinished."""

    def can_hand_off(self, tp: TP) -> bool:
        """Whether the conductor's callback for ``tp`` cannot be left waiting: no
        rebalance under way (suspended flow, flow control, the subscription
        lock) and room in its stream buffers. Its wait for a full producer
        buffer is a flush, which ends on its own, so it is not checked (the
        check reads Faust's settings, a tenth of the hand-off's cost)."""
        app: Any = self.app
        topics = app.topics
        if (
            self.suspend_flow.is_set()
            or not app.flow_control.is_active()
            or topics._tp_to_callback_lock.locked()
        ):
            return False
        return not any(channel.queue.full() for channel in topics._tp_index.get(tp, ()))

    async def wait_for_room(self, tp: TP) -> None:
        """Wait until the stream buffers of ``tp`` have drained to Faust's
        pressure-drop size (40 %), unless the flow is suspended or the consumer stops.

        A full buffer is the usual state under load (the agent is slower than
        the fetch): Faust then hands each message over as soon as one slot is
        free, a task switch and a ``put`` task per message. Waiting for room
        for many lets them all go the direct way; the agent has a full buffer
        to work on meanwhile, so the polling costs it nothing.
        """
        channels = self.app.topics._tp_index.get(tp, ())  # type: ignore[attr-defined]
        while (  # noqa: ASYNC110 - polled: Faust's queue signals only its own drop callback
            not self.should_stop
            and not self.suspend_flow.is_set()
            and any(ch.queue.qsize() > ch.queue.pressure_drop_size for ch in channels)
        ):
            await asyncio.sleep(ROOM_POLL)

    async def deliver(self, tp: TP, message: Message) -> None:
        """Hand ``message`` to its stream: directly if nothing can make it wait,
        else (a rebalance, a buffer still full) Faust's way, which can give up."""
        if not self.can_hand_off(tp):
            await self.wait_for_room(tp)
        if self.can_hand_off(tp):
            await self.callback(message)
        else:
            await self.wait_first(self.callback(message), self.suspend_flow.wait())

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        """Faust's pause; a changelog partition is paused in aiokafka too (why: the
        module's docstring, "Changelogs fetched only when Faust reads them")."""
        tpset = set(tps)
        super().pause_partitions(tpset)
        changelogs = self.app.tables.changelog_topics
        paused = {tp for tp in tpset if tp.topic in changelogs}
        if paused:
            self.keep_quiet(self.quiet | paused)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        """Faust's resume; a changelog partition is resumed in aiokafka too."""
        tpset = set(tps)
        super().resume_partitions(tpset)
        if not self.quiet.isdisjoint(tpset):
            self.keep_quiet(self.quiet.difference(tpset))

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's check that every assigned partition is being fetched, except the ones
        the engine keeps aiokafka from fetching on purpose (the paused changelogs, the
        held inbound partitions): Faust logged an ERROR ("has not sent fetch request")
        for each of them, every few seconds, on healthy workers."""
        if tp in self.quiet or tp in self.held:
            return None
        return super().verify_event_path(now, tp)

    def keep_quiet(self, quiet: frozenset[TP]) -> None:
        """Make ``quiet`` the changelogs paused, and tell aiokafka even when it did not
        change: a new assignment starts unpaused there (Faust pauses at each one)."""
        self.quiet = quiet
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not in the app's loop: the next pause or hold sends it
            return
        call = asyncio.ensure_future(match_paused(self))
        self.quiet_calls.add(call)
        call.add_done_callback(functools.partial(_quiet_done, self.quiet_calls))

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - Faust's loop
        """Faust's ``Consumer._drain_messages``, with the direct hand-off.

        Otherwise it does what Faust's does (read offsets, gaps for acking
        topics, ``broker_commit_every``, a yield to the loop every 100 messages),
        so Faust's bookkeeping stays what it expects, except that a record of an
        ``ordered`` topic below the read offset is handed over too; a unit test fails
        when Faust's loop changes (``COPIED_LOOP_DIGEST``).
        """
        deliver = self.deliver
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = cast(Any, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                batch = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in batch:
                        since_yield += 1
                        if since_yield > yield_every:
                            await self.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        read = get_read_offset(tp)
                        if read is not None and offset < read and tp.topic not in self.ordered:
                            continue  # Faust drops what precedes its read offset, too
                        if read and offset - read > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, read + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        await deliver(tp, message)
                        set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


LZ4_LEVEL = 1
"""The level the engine's producers compress lz4 batches at: lz4's fast mode."""


def lz4_fast(payload: bytes) -> bytes:
    """aiokafka's ``lz4_encode`` (a frame of independent blocks, no content checksum,
    as Kafka reads it) at ``LZ4_LEVEL``."""
    compressor = cramjam.lz4.Compressor(level=LZ4_LEVEL, content_checksum=False, block_linked=False)
    compressor.compress(payload)
    return bytes(compressor.finish())


def lz4_builders() -> set[ModuleType]:
    """The modules of aiokafka's record batch builders, compiled and pure Python: each
    calls the ``lz4_encode`` of its own module."""
    return {aiokafka.record.default_records, sys.modules[DefaultRecordBatchBuilder.__module__]}


def fast_lz4() -> None:
    """Make every aiokafka producer of this process compress lz4 batches in lz4's fast
    mode (the module's docstring says why)."""
    for module in lz4_builders():
        module.lz4_encode = lz4_fast  # type: ignore[attr-defined]


class RawSchema(faust.Schema[bytes, bytes]):
    """The schema of topics read as raw bytes: each message's event carries its key and
    value as read, made without Faust's decoding.

    Faust's decode passes both through its serializer registry (the ``raw`` codec
    hands the bytes back) and looks up the app's ``Event`` class in its settings,
    for every message, for values the engine reads from ``event.message`` anyway.
    The event is the one Faust's ``raw`` decode makes.
    """

    def __init__(self) -> None:
        super().__init__(key_serializer="raw", value_serializer="raw")

    def compile(self, app: Any, **_: Any) -> Callable[..., Awaitable[Any]]:
        make = app.conf.Event

        async def decode(message: Message, *, propagate: bool = False) -> Any:
            return make(app, message.key, message.value, message.headers, message)

        return decode


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's producer with aiokafka's idempotence on: each batch carries the producer's
    id and a sequence number, so the broker keeps one copy of a batch sent again.

    aiokafka retries a batch whose answer did not come (a broker restarted, or gone
    a while), and the broker may have written it before it went: without
    idempotence the retry wrote the outputs and changelog records a second time, and
    a worker that rode out a broker outage sent some triggers twice. Faust asks for
    idempotence only in a transaction (exactly-once); the engine runs at least once
    and needs only the broker's de-duplication of retries."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class HandOffTransport(faust_aiokafka.Transport):
    Consumer = HandOffConsumer
    Producer = IdempotentProducer

    ordered: frozenset[str] = frozenset()
    """``HandOffConsumer.ordered``, set by ``lean_hand_off``."""

    def create_producer(self, **kwargs: Any) -> Any:
        """Faust's producer, whose buffer's size is checked without reading the settings.

        Faust's conductor awaits ``wait_until_ebb`` before every message it hands
        over, and the buffer's ``size`` reads ``producer_threaded`` from the app's
        settings each time, through their ``__getattribute__``. The engine sends
        through batches of its own, so the buffer stays empty; when it does fill
        up, Faust's own wait runs."""
        producer = super().create_producer(**kwargs)
        buffer = producer.buffer
        if not self.app.conf.producer_threaded:
            wait_full = buffer.wait_until_ebb
            pending = buffer.pending

            async def wait_until_ebb() -> None:
                if pending.qsize() > buffer.max_messages:
                    await wait_full()

            buffer.wait_until_ebb = wait_until_ebb  # type: ignore[method-assign]
        return producer


def lean_hand_off(app: faust.App, ordered: Collection[str] = ()) -> None:
    """Make ``app`` consume with ``HandOffConsumer``, handing over every record of the
    ``ordered`` topics (``HandOffConsumer.ordered``); before anything uses its transport."""
    topics = frozenset(ordered)

    def transport() -> HandOffTransport:
        made = HandOffTransport(app.conf.broker_consumer, app)
        made.ordered = topics
        return made

    app._new_transport = transport  # type: ignore[method-assign]


# The ports (``streams.ports``) over Faust's consumer, producer and tables.


EndOffsets = Callable[[list[TP]], Awaitable[dict[TP, int]]]


class FaustConsumer:
    """``streams.ports.Consumer`` over the consumer of a Faust ``app`` (made when first used)."""

    def __init__(self, app: Any, ends: EndOffsets | None = None) -> None:
        self.app = app
        self.ends = ends
        """The end offsets of partitions, asked on a client of the worker's own."""
        self.asking: asyncio.Future[None] | None = None
        """The ``ask_ends`` on its way, if any."""

    def assignment(self) -> Iterable[TP]:
        assigned: Iterable[TP] = self.app.consumer.assignment()
        return assigned

    def fetched(self, tp: TP) -> tuple[int, float] | None:
        return fetched(self.app.consumer, tp)

    def keep_answers(self) -> None:
        fetch_answers(self.app.consumer)
        if self.asking is not None:  # an ask of the assignment before: not awaited again
            self.asking.cancel()
        self.asking = None

    def ask_ends(self, tps: Collection[TP]) -> None:
        """Ask ``ends`` (ListOffsets on a connection of its own: the broker answers a
        connection's requests in turn, so behind the fetcher's waiting fetch an ask took
        the fetch wait too) and keep each end as a fetch answer sent then. At most one
        ask is on its way: a call meanwhile asks nothing (the caller asks again at its
        next round)."""
        asking = self.asking
        if not tps or self.ends is None or (asking is not None and not asking.done()):
            return
        self.asking = asyncio.ensure_future(self.keep_ends(self.ends, list(tps)))

    async def keep_ends(self, ends: EndOffsets, tps: list[TP]) -> None:
        """``ends`` of ``tps``, each kept as a fetch answer sent when they were asked."""
        answers = fetch_answers(self.app.consumer)
        if answers is None:
            return
        sent = time.monotonic()
        try:
            found = await ends(tps)
        except Exception as exc:  # the broker may be away: the fetches still answer
            log.debug("end offsets not asked (%s)", type(exc).__name__)
            return
        answered = time.monotonic()
        for tp, end in found.items():
            answers.keep((tp.topic, tp.partition), end, sent, answered)

    def appended_by(self, tp: TP, offset: int) -> float:
        return appended_by(self.app.consumer, tp, offset)

    def fetch_positions(self, tps: Iterable[TP]) -> dict[TP, int]:
        return fetch_positions(self.app.consumer, tps)

    def buffered(self, tp: TP) -> bool:
        return buffered(self.app.consumer, tp)

    async def seek(self, offsets: Mapping[TP, int]) -> None:
        await self.app.consumer.seek_wait(dict(offsets))

    async def commit(self, offsets: Mapping[TP, int]) -> bool:
        return await commit_exactly(self.app.consumer, offsets)

    def hold(self, held: AbstractSet[TP]) -> Awaitable[None]:
        """Pause ``held`` in aiokafka, in the consumer's thread (why: the module's docstring)."""
        consumer = self.app.consumer
        consumer.held = held
        return match_paused(consumer)


def match_paused(consumer: Any) -> Awaitable[None]:
    """Make aiokafka's paused partitions those Faust's ``consumer`` names in ``held``
    (the agent's) and ``quiet`` (Faust's paused changelogs), in its thread."""
    return in_consumer_thread(consumer, _match_paused, consumer)


def _quiet_done(calls: set[asyncio.Future[None]], call: asyncio.Future[None]) -> None:
    calls.discard(call)
    if not call.cancelled() and (exc := call.exception()) is not None:
        # only a stopped consumer fails it (a rebalance at shutdown): nothing is read then
        log.warning("changelog fetching not paused or resumed (%s)", type(exc).__name__)


def _match_paused(client: AIOKafkaConsumer, consumer: HandOffConsumer) -> None:
    """In the consumer's thread: pause what ``consumer.held`` and ``consumer.quiet``
    name, resume what they no longer do.

    Both are read here, when the call runs, so calls that overtake each
    other still leave the latest sets in place. The client is asked for then
    too (``in_consumer_thread``): a stopped consumer (a rebalance at shutdown)
    fails this call, which is logged, not the rebalance.
    """
    want = frozenset(consumer.held) | consumer.quiet  # one snapshot of each
    paused = client.paused()
    client.pause(*(tp for tp in client.assignment() if tp in want and tp not in paused))
    client.resume(*(tp for tp in paused if tp not in want))


class FaustProducer:
    """``streams.ports.Producer``: the aiokafka producer under Faust's, asked for at each
    call (it exists once the app has started its producer). Its client is told of each
    topic written (``streams.kafka.track_topic``: why)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._client: Any = None

    async def writing(self, topic: str) -> AIOKafkaProducer:
        """The aiokafka producer, its client told of ``topic``, and first of the tables'
        changelogs: Faust's router reads their partitions from this client's metadata
        (``/customers/{id}`` on a worker that does not hold the customer), which keeps
        only the topics it was told of once it was told of one."""
        producer = kafka_producer(self.app.producer)
        client = producer.client
        if client is not self._client:
            for table in self.app.tables.values():
                await track_topic(client, table.changelog_topic.get_topic_name())
            self._client = client
        await track_topic(client, topic)
        return producer

    async def partitions_for(self, topic: str) -> AbstractSet[int]:
        producer = await self.writing(topic)
        partitions: AbstractSet[int] = await producer.partitions_for(topic)
        return partitions

    def create_batch(self) -> RecordBatch:
        batch: RecordBatch = kafka_producer(self.app.producer).create_batch()
        return batch

    async def send_batch(
        self, batch: RecordBatch, topic: str, *, partition: int
    ) -> asyncio.Future[Any]:
        producer = await self.writing(topic)
        sent: asyncio.Future[Any] = await producer.send_batch(
            cast(Any, batch), topic, partition=partition
        )
        return sent

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Any]:
        producer = await self.writing(topic)
        sent: asyncio.Future[Any] = await producer.send(topic, value, key=key, partition=partition)
        return sent


class FaustStore:
    """``streams.ports.Store`` over a Faust table of raw bytes.

    Writes go to the table's store directly, in the partition of the event
    that caused them (``in_partition_of``); the checkpoint sends their
    changelog records itself (``streams.table_writes``).
    """

    def __init__(self, table: Any) -> None:
        self.table = table

    @property
    def changelog(self) -> str:
        name: str = self.table.changelog_topic.get_topic_name()
        return name

    def get(self, key: bytes) -> bytes | None:
        return read_stored(self.table, key)

    def write(self, event: FaustEvent, key: bytes, value: bytes | None) -> bool:
        with in_partition_of(event):
            return put_or_delete(self.table.data, key, value)

    def persisted(self, tp: TP, offset: int) -> None:
        self.table.data.set_persisted_offset(tp, offset)

    def scan(self) -> Iterator[tuple[int | None, bytes, bytes]]:
        store = self.table.data
        dbs = partition_stores(store)  # rocksdb keeps one db per partition: exact
        if dbs is None:
            for key, raw in self.table.items():
                yield None, key, raw
            return
        for partition, db in list(dbs.items()):
            for key, raw in scan_uncached(db, store.offset_key):
                yield int(partition), key, raw

    def holder(self, key: bytes) -> int | None:
        dbs = partition_stores(self.table.data)
        for partition, db in list((dbs or {}).items()):
            if db.get(key) is not None:
                return int(partition)
        return None


def scan_uncached(db: Any, skip: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of one rocksdict store except ``skip``, read past its block cache.

    The timer rebuild after each rebalance reads every record once: cached, the
    scan filled each store's cache to its cap and pushed out the records in use
    (after recovering 125,000 customers, 90 MiB more resident than with 1 MiB
    caches). RocksDB advises ``fill_cache`` off for bulk scans.
    """
    import rocksdict

    options = rocksdict.ReadOptions()
    options.fill_cache(False)  # type: ignore[call-arg]  # rocksdict's stub leaves the flag out
    for key, value in db.items(read_opt=options):
        if key != skip:
            yield key, value


# Faust's recovery, read in bulk.

BULK_RECORDS = 5_000
"""Records the bulk read takes from its consumer at a time (one write batch per table
partition each): enough to pay the per-call costs rarely, few enough to keep memory flat."""

BULK_IDLE = 10.0
"""Seconds without progress after which the bulk read leaves the rest to Faust's recovery."""


class _Changelogged:
    """A changelog record as a table's ``apply_changelog_batch`` reads it: an event that
    is its own message (``message.tp``, ``.partition``, ``.offset``, ``.key``, ``.value``)."""

    __slots__ = ("key", "offset", "partition", "tp", "value")

    def __init__(self, tp: TP, offset: int, key: bytes | None, value: bytes | None) -> None:
        self.tp = tp
        self.partition = tp.partition
        self.offset = offset
        self.key = key
        self.value = value

    @property
    def message(self) -> _Changelogged:
        return self


class BulkRecovery(Recovery):
    """Faust's recovery, with the active changelog partitions read in bulk.

    Faust builds each active partition's highwater, then the offset it reads from
    (``_build_offsets``: the store's persisted offset, or the log's start). Right
    after, each partition behind its highwater is read here up to it and applied
    through the table's ``apply_changelog_batch``; the offsets it reached are where
    Faust then seeks, so it finds nothing left, and a store that already held most
    of its partition (a restart on the same disk) reads only the rest. Reading
    before Faust's own offsets were built would not do: by then Faust's consumer is
    fetching the assigned partitions, and its offset request waited a second behind
    those fetches. Standby partitions are Faust's as before.
    """

    @property
    def reader(self) -> Callable[[], AIOKafkaConsumer] | None:
        """A new consumer with no group, for each bulk read (``lean_recovery``); None
        reads as Faust does."""
        reader: Callable[[], AIOKafkaConsumer] | None = getattr(self.tables, "reader", None)
        return reader

    async def _build_offsets(
        self, consumer: Any, tps: set[TP], destination: Any, title: str
    ) -> None:
        await super()._build_offsets(consumer, tps, destination, title)
        make = self.reader
        if title != "active" or not tps or make is None:
            return
        started = time.monotonic()
        try:
            read = await self.read_in_bulk(make, tps, destination)
        except Exception:
            log.exception("recovery: the bulk read failed, Faust reads what it left")
        else:
            if read:
                log.info(
                    "recovery: %d changelog records read in bulk in %.2fs",
                    read,
                    time.monotonic() - started,
                )

    async def read_in_bulk(
        self, make: Callable[[], AIOKafkaConsumer], tps: AbstractSet[TP], destination: Any
    ) -> int:
        """Read every partition of ``tps`` from its offset in ``destination`` to its
        highwater into its table, with a consumer from ``make`` made only when one is
        behind; ``destination`` gets the offset each one reached."""
        highwaters, tables = self.active_highwaters, self.tp_to_table
        behind = {}
        for tp in tps:
            start = destination.get(tp)
            start = -1 if start is None else start
            highwater = highwaters.get(tp)
            if tp in tables and highwater is not None and highwater > start:
                behind[TopicPartition(tp.topic, tp.partition)] = (tp, start)
        if not behind:
            return 0
        reader = make()
        await reader.start()
        read = 0
        try:
            reader.assign(list(behind))
            for part, (_, start) in behind.items():
                reader.seek(part, start + 1)
            pending = {part: tp for part, (tp, _) in behind.items()}
            progress = time.monotonic()
            while pending:
                fetched = await reader.getmany(*pending, timeout_ms=1000, max_records=BULK_RECORDS)
                for part, records in fetched.items():
                    owner = pending.get(part)
                    if owner is None or not records:
                        continue
                    changes = [_Changelogged(owner, r.offset, r.key, r.value) for r in records]
                    tables[owner].apply_changelog_batch(cast("list[Any]", changes))
                    destination[owner] = records[-1].offset
                    read += len(records)
                    progress = time.monotonic()
                for part, tp in list(pending.items()):
                    if await reader.position(part) > highwaters[tp]:
                        destination[tp] = highwaters[tp]
                        del pending[part]
                if pending and time.monotonic() - progress > BULK_IDLE:
                    msg = f"no changelog record for {BULK_IDLE:.0f}s"
                    raise TimeoutError(msg)
        finally:
            await reader.stop()
        return read


class BulkTableManager(TableManager):
    """Faust's table manager with ``BulkRecovery`` as its recovery (Faust's
    ``TableManager`` setting); ``lean_recovery`` gives it its reader."""

    reader: Callable[[], AIOKafkaConsumer] | None = None

    async def on_start(self) -> None:
        """Faust's start without its one-second sleep, which lets an app declare tables
        as its agents start: the engine declares every table before the app starts
        (``streams.app``), and the sleep was a tenth of a fresh worker's time to ready."""
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = BulkRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


def lean_recovery(app: faust.App, reader: Callable[[], AIOKafkaConsumer]) -> None:
    """Make ``app``'s recovery read its active changelogs in bulk with consumers from
    ``reader`` (the app must be built with ``TableManager=BulkTableManager``)."""
    tables = app.tables
    if not isinstance(tables, BulkTableManager):
        msg = "the app's TableManager setting is not BulkTableManager"
        raise TypeError(msg)
    tables.reader = reader
