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
