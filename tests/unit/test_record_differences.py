"""The crash tests' account of records that differ from the core's: it must show the
part that differs, however long the record's lists."""

from harness.engine import record_differences


def test_a_swap_deep_in_a_list_is_shown_where_it_is() -> None:
    ids = [f"ev-{i}" for i in range(40)]
    swapped = [*ids[:30], ids[31], ids[30], *ids[32:]]
    got = {"c1": {"ids": swapped, "stage": "loyal"}, "c2": {"ids": ids}}
    want = {"c1": {"ids": ids, "stage": "loyal"}, "c2": {"ids": ids}}
    assert record_differences(got, want) == [
        "c1.ids: 40 against 40 items, from [30]: "
        "['ev-31', 'ev-30', 'ev-32', 'ev-33', 'ev-34', 'ev-35'] against "
        "['ev-30', 'ev-31', 'ev-32', 'ev-33', 'ev-34', 'ev-35']"
    ]


def test_a_list_one_item_longer_and_a_scalar_field() -> None:
    got = {"c1": {"ids": ["a", "b", "b"], "stage": "lead"}}
    want = {"c1": {"ids": ["a", "b"], "stage": "active"}}
    assert record_differences(got, want) == [
        "c1.ids: 3 against 2 items, from [2]: ['b'] against []",
        "c1.stage: 'lead' against 'active'",
    ]


def test_keys_missing_or_equal_are_not_differences() -> None:
    assert record_differences({"a": {"x": 1}}, {"a": {"x": 1}, "b": {"x": 2}}) == []
