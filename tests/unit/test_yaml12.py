"""The playbook's YAML 1.2 loader, and the one-line error format of a bad playbook."""

from __future__ import annotations

import math

import pytest
import yaml

from lifecycle.flows.yaml12 import load
from lifecycle.playbook import PlaybookError, error_path, parse_playbook
from schemas.records import Campaign


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[NO, SE, DK]", ["NO", "SE", "DK"]),
        ("[yes, no, on, off, Y, n]", ["yes", "no", "on", "off", "Y", "n"]),
        ("[true, True, TRUE, false, False, FALSE]", [True, True, True, False, False, False]),
        ("09:00", "09:00"),
        ("'09:00'", "09:00"),
        ("1:30", "1:30"),
        ("2024-01-31", "2024-01-31"),
        ("2024-01-31T09:00:00Z", "2024-01-31T09:00:00Z"),
        ("012", 12),
        ("0o17", 15),
        ("0x1f", 31),
        ("-3", -3),
        ("1_000", "1_000"),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("-.inf", float("-inf")),
        ("~", None),
        ("null", None),
        ("coffee", "coffee"),
    ],
)
def test_yaml_1_2_core_scalars(text: str, value: object) -> None:
    assert load(f"v: {text}\n") == {"v": value}


def test_the_loader_leaves_pyyaml_s_own_loader_alone() -> None:
    load("v: NO\n")
    assert yaml.safe_load("v: NO\n") == {"v": False}


def test_nan_is_a_float() -> None:
    value = load("v: .nan\n")["v"]
    assert isinstance(value, float)
    assert math.isnan(value)


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (
            ("flows", "cart_series", "steps", 2, "send", "campaign"),
            "flows.cart_series.steps[2].send.campaign",
        ),
        (("policies", "frequency_caps", 0, "count"), "policies.frequency_caps[0].count"),
        ((), ""),
    ],
)
def test_error_paths_print_list_indices_in_brackets(loc: tuple[int | str, ...], path: str) -> None:
    assert error_path(loc) == path


def test_an_error_is_one_line_with_path_and_problem() -> None:
    with pytest.raises(PlaybookError) as info:
        parse_playbook("policies:\n  frequency_caps:\n    - {within: 24h}\n", "shop.yaml")
    assert (
        str(info.value) == "invalid playbook shop.yaml: policies.frequency_caps[0].count: required"
    )


def test_each_problem_has_its_own_line_the_first_on_the_first() -> None:
    with pytest.raises(PlaybookError) as info:
        parse_playbook("stages:\n  repeat_min_orders: 1\n  gap_purchases: 1\n", "shop.yaml")
    lines = str(info.value).splitlines()
    assert lines[0].startswith("invalid playbook shop.yaml: stages.repeat_min_orders: ")
    assert lines[1].startswith("stages.gap_purchases: ")


def test_yes_and_no_still_switch_a_typed_boolean_field() -> None:
    """The loader reads ``no`` as a string; a bool field of the playbook still accepts it."""
    book = parse_playbook("campaigns:\n  welcome: {enabled: no}\n  win_back: {survey: yes}\n")
    assert not book.campaigns[Campaign.WELCOME].enabled
    assert book.campaigns[Campaign.WIN_BACK].survey


def test_unquoted_clock_times_are_read_as_times() -> None:
    book = parse_playbook("policies:\n  quiet_hours: {start: 22:00, end: 07:30}\n")
    assert str(book.policies.quiet_hours.start) == "22:00:00"
    assert str(book.policies.quiet_hours.end) == "07:30:00"


def test_a_key_twice_in_one_mapping_is_refused_with_both_lines() -> None:
    """YAML 1.2 wants keys unique; PyYAML would keep the second flow and drop the first."""
    text = (
        "flows:\n"
        "  x: {trigger: {event: cart}, steps: [{send: {campaign: a}}]}\n"
        "  x: {trigger: {event: purchase}, steps: [{send: {campaign: b}}]}\n"
    )
    with pytest.raises(PlaybookError) as info:
        parse_playbook(text, "shop.yaml")
    assert str(info.value) == (
        "invalid playbook shop.yaml: not valid YAML at line 3, column 3:"
        " the key 'x' is here twice (first at line 2)"
    )
    with pytest.raises(yaml.YAMLError):
        load("a: {b: 1, b: 2}\n")


def test_a_merge_key_may_be_overridden() -> None:
    assert load("a: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n") == {
        "a": {"x": 1, "y": 2},
        "c": {"x": 3, "y": 2},
    }


def test_a_malformed_document_names_its_line_and_column() -> None:
    with pytest.raises(PlaybookError) as info:
        parse_playbook("flows:\n  x: {trigger: {event: cart}, steps: [{wait: 1h}\n", "shop.yaml")
    assert str(info.value) == (
        "invalid playbook shop.yaml: not valid YAML at line 3, column 1: expected ',' or ']',"
        " but got '<stream end>' (while parsing a flow sequence, from line 2, column 38)"
    )
