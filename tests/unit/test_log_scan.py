"""The log scanner the integration tests trust to find personal data must find it."""

from __future__ import annotations

from harness.engine import personal_data_in

EVENTS = [{"email": "cust-7@mail.example", "first_name": "Ada"}, {"first_name": "Ben"}]


def test_finds_emails_and_whole_names() -> None:
    log = "sent welcome to cust-7@mail.example\nhello Ben, see you"
    assert personal_data_in(log, EVENTS) == ["Ben", "cust-7@mail.example"]


def test_ignores_names_inside_other_words_and_other_addresses() -> None:
    log = "MergeAdapter failed; Benchmark ok; xcust-7@mail.example.org; cust-77@mail.example"
    assert personal_data_in(log, EVENTS) == []


def test_names_with_other_characters_are_whole_names_too() -> None:
    events = [{"first_name": "Jean-Luc"}, {"first_name": "Zoë"}, {"first_name": "Jean-Luc"}]
    assert personal_data_in("hello Jean-Luc!\nZoë.", events) == ["Jean-Luc", "Zoë"]
    assert personal_data_in("Jean-Lucas; xZoë; Zoëy", events) == []


def test_each_value_is_reported_once_and_non_text_is_ignored() -> None:
    events = [*EVENTS, *EVENTS, {"email": None, "first_name": 7}, {"first_name": ""}]
    assert personal_data_in("Ada and Ada, Ben", events) == ["Ada", "Ben"]
