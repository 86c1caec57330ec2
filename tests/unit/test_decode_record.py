"""``decode_record`` gives what ``model_validate_json`` gives, for every record the engine writes.

The records come from two sources: every record the backtest writes while it
runs simulated customers (the shapes the engine really makes), and records
generated from the models' own annotations (every field, with values the
simulation never reaches), so a field added to a model is generated here too
and a decoder that does not convert it fails.
"""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel

from analytics.simulation import simulate
from lifecycle.backtest import Backtest
from lifecycle.core import Input
from lifecycle.playbook import default_playbook
from lifecycle.runtime import DictStore
from lifecycle.state import AttributionWindow, CustomerState, Legacy, Profile, decode_record
from schemas.codec import dumps, encode_model
from streams.producer import partitioner


def assert_same(got: Any, expected: Any, where: str = "record") -> None:
    """Equal, and more than ``==`` checks: the same types (a datetime's tzinfo too),
    the same fields set, and dicts in the same order (what the encoder follows)."""
    assert type(got) is type(expected), where
    if isinstance(expected, BaseModel):
        assert got.model_fields_set == expected.model_fields_set, where
        assert got.model_extra == expected.model_extra, where
        assert got.__pydantic_private__ == expected.__pydantic_private__, where
        assert_same(got.__dict__, expected.__dict__, where)
    elif isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key, value in expected.items():
            assert_same(got[key], value, f"{where}.{key}")
    elif isinstance(expected, list | tuple):
        assert len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, datetime):
        assert got == expected, where
        assert got.tzinfo is expected.tzinfo, where
    else:
        assert got == expected, where
        assert repr(got) == repr(expected), where  # a Decimal's exponent too


def check(*raws: bytes, fast: bool = True) -> None:
    """``decode_record(raw)`` is ``model_validate_json(raw)``, and encodes back to the same
    bytes; with ``fast``, without falling back to validation."""
    expected = [CustomerState.model_validate_json(raw) for raw in raws]
    if fast:
        with mock.patch.object(
            CustomerState, "model_validate_json", side_effect=AssertionError("validated")
        ):
            got = [decode_record(raw) for raw in raws]
    else:
        got = [decode_record(raw) for raw in raws]
    for a, b in zip(got, expected, strict=True):
        assert_same(a, b)
        assert encode_model(a) == encode_model(b)


class Recording(DictStore):
    """The backtest's store, keeping the bytes of every record written."""

    def __init__(self, records: dict[str, CustomerState]) -> None:
        super().__init__(records)
        self.written: list[bytes] = []

    def put(self, key: str, state: CustomerState | None, cause: Input, position: object) -> None:
        super().put(key, state, cause, position)
        if state is not None:
            self.written.append(encode_model(state))


@pytest.fixture(scope="module")
def written() -> list[bytes]:
    runner = Backtest(default_playbook(), partitioner(6))
    store = runner.store = Recording(runner.states)
    events = simulate(200, seed=3, duplicate_rate=0.05, extras=True)
    for _ in runner.run([dumps(e) for e in events]):
        pass
    return store.written


def test_every_record_the_backtest_writes(written: list[bytes]) -> None:
    check(*written)
    assert [encode_model(decode_record(raw)) for raw in written] == written


def test_the_simulation_reaches_every_kind_of_field(written: list[bytes]) -> None:
    """The records above are no easy sample: every converted field is set in some."""
    reached: set[str] = set()
    for raw in written:
        record = orjson.loads(raw)
        reached |= {name for name, value in record.items() if value not in (None, [], {})}
        reached |= {f"profile.{name}" for name in record["profile"]}
        if any(w["conversions"] for w in record["windows"]):
            reached.add("conversions")
    assert reached >= {
        *("stage", "signed_up_at", "first_order_at", "last_order_at", "order_net"),
        *("purchase_times", "cart", "views", "runs", "entered"),
        *("timers", "p_alive", "predicted_clv", "predicted_at"),
        *("marketing_sent", "history", "windows", "conversions", "profile.traits"),
    }


# --- records from the models' annotations -----------------------------------------

_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
_TIMES = st.datetimes(  # hypothesis takes naive bounds, and ``timezones`` for the values
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=_ZONES,
)


def strategy(annotation: Any) -> st.SearchStrategy[Any]:
    """Values of ``annotation``, for every type a record's fields use; any other fails,
    so a field of a new type is noticed here."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return strategy(args[0])
    if origin is Union or origin is types.UnionType:
        return st.one_of([strategy(a) for a in args])
    if origin is Literal:
        return st.sampled_from(args)
    if origin is list:
        return st.lists(strategy(args[0]), max_size=3)
    if origin is tuple:
        return st.lists(strategy(args[0]), max_size=2).map(tuple)
    if origin is dict:
        return st.dictionaries(st.text(max_size=6), strategy(args[1]), max_size=3)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        str: st.text(max_size=12),
        bool: st.booleans(),
        int: st.integers(-(2**63), 2**63 - 1),
        float: st.floats(allow_nan=False, allow_infinity=False),
        Decimal: st.decimals(allow_nan=False, allow_infinity=False),
        AwareDatetime: _TIMES,
    }
    if annotation in simple:
        return simple[annotation]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return st.sampled_from(list(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return models(annotation)
    msg = f"no strategy for {annotation!r}: add one, and make decode_record convert it"
    raise AssertionError(msg)


def models(cls: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    """``cls`` made through validation from a value for every field."""
    fields = {name: strategy(f.annotation) for name, f in cls.model_fields.items()}
    return st.fixed_dictionaries(fields).map(lambda values: cls(**values))


RECORDS = models(CustomerState)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECORDS)
def test_any_record(record: BaseModel) -> None:
    check(encode_model(record))


def _defaulted(cls: type[BaseModel]) -> list[str]:
    return [name for name, f in cls.model_fields.items() if not f.is_required()]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECORDS, st.data())
def test_a_record_missing_a_field_with_a_default(record: BaseModel, data: st.DataObject) -> None:
    """What an older version wrote, before the field existed: it gets the default."""
    body = orjson.loads(encode_model(record))
    # (the flow fields are absent from the JSON while empty: not every default is there)
    name = data.draw(st.sampled_from([n for n in _defaulted(CustomerState) if n in body]))
    del body[name]
    check(orjson.dumps(body), fast=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECORDS, st.data())
def test_a_sub_record_missing_a_field_with_a_default(
    record: BaseModel, data: st.DataObject
) -> None:
    body = orjson.loads(encode_model(record))
    inner = [(body["profile"], Profile)] + [(w, AttributionWindow) for w in body["windows"]]
    value, cls = data.draw(st.sampled_from(inner))
    # (a profile's traits are absent from the JSON while empty: not every default is there)
    del value[data.draw(st.sampled_from([n for n in _defaulted(cls) if n in value]))]
    check(orjson.dumps(body), fast=False)


OLDER = (
    b'{"customer_id":"c1","stage":"first_time_buyer","first_seen_at":"2025-01-20T02:03:06Z",'
    b'"last_event_at":"2025-01-21T10:00:00Z","signed_up_at":null,"orders":1,"revenue":"20.50",'
    b'"first_order_at":"2025-01-21T10:00:00Z","last_order_at":"2025-01-21T10:00:00Z",'
    b'"order_net":{"o1":"20.50"},"recent_event_ids":["e1","e2"],"cart":{},"browsed":[],'
    b'"timers":{"at_risk":"2025-03-22T10:00:00Z"},"history":[{"at":"2025-01-21T10:00:00Z",'
    b'"from_stage":null,"to_stage":"first_time_buyer","reason":"first_purchase","caused_by":"e2"}]}'
)
"""A record as a version without predictions, windows, caps or merges wrote it."""


def test_an_older_record_gets_the_defaults_of_the_fields_it_lacks() -> None:
    check(OLDER, fast=False)
    record = decode_record(OLDER)
    assert (record.windows, record.p_alive, record.purchase_days) == ([], None, 0)
    # the campaign fields a version before flows wrote are kept apart, for the core to adopt
    assert record.legacy == Legacy(browsed=())
    assert record.model_fields_set == set(orjson.loads(OLDER)) - {"browsed"} | {"legacy"}


def test_fields_in_another_order_are_encoded_in_the_models_order() -> None:
    body = orjson.loads(OLDER)
    check(orjson.dumps(dict(reversed(body.items()))), fast=False)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b"null", b'{"customer_id":"c1"}', OLDER.replace(b'"20.50"', b'"x"', 1)],
)
def test_what_is_not_a_record_fails_as_validation_fails(raw: bytes) -> None:
    with pytest.raises(ValueError, match="validation error") as failed:
        decode_record(raw)
    with pytest.raises(ValueError, match="validation error") as expected:
        CustomerState.model_validate_json(raw)
    assert str(failed.value) == str(expected.value)


def test_an_unknown_field_fails_as_validation_fails(written: list[bytes]) -> None:
    raw = written[0][:-1] + b',"retired":1}'
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        decode_record(raw)


def test_frozen_sub_records_share_a_fields_set_and_the_others_own_theirs(
    written: list[bytes],
) -> None:
    """A frozen model is never changed, so every decoded one of a kind shares one fields
    set (fewer objects for the garbage collector); a record and its profile, which the
    core changes in place, each keep a set of their own."""
    records = [decode_record(raw) for raw in written]
    moves = [move for record in records for move in record.history]
    assert len(moves) > 1
    assert len({id(move.__pydantic_fields_set__) for move in moves}) == 1
    assert moves[0].model_fields_set == set(type(moves[0]).model_fields)
    first, second = records[0], records[1]
    assert first.__pydantic_fields_set__ is not second.__pydantic_fields_set__
    assert first.profile.__pydantic_fields_set__ is not second.profile.__pydantic_fields_set__
    with pytest.raises(ValueError, match="frozen"):
        moves[0].reason = "changed"  # type: ignore[misc]
    first.stage = None
    assert "stage" in first.model_fields_set
    assert moves[0].model_fields_set == set(type(moves[0]).model_fields)
