"""A YAML loader with the YAML 1.2 core schema's scalars, for playbooks.

PyYAML implements YAML 1.1, where ``NO``, ``yes`` and ``off`` are booleans,
``09:00`` is the sexagesimal integer 540 and ``2024-01-31`` a date. A marketer
writing ``in: [NO, SE, DK]`` or ``at: 09:00`` means the strings. Under the 1.2
core schema only ``true``/``false`` are booleans, integers are decimal, ``0o``
octal or ``0x`` hex, and dates stay strings.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["Yaml12Loader", "load"]

_REPLACED = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


class Yaml12Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the YAML 1.2 core schema's booleans, numbers and no timestamps,
    and keys unique in each mapping, as YAML 1.2 requires (PyYAML keeps the last of two):
    a flow copied and not renamed would otherwise replace the first without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *base`` then a key of its own overrides the base's, by design
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                continue  # an unhashable key: the base constructor says so
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {key!r} is here twice (first at line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"  # type: ignore[arg-type]


def _int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    try:
        return int(text, 0) if text.startswith(("0o", "0x")) else int(text)
    except ValueError as exc:  # Python's cap on the digits of an int it reads
        msg = f"an integer of {len(text)} digits is too long"
        raise yaml.constructor.ConstructorError(None, None, msg, node.start_mark) from exc


def _float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = str(loader.construct_scalar(node)).lower()  # type: ignore[arg-type]
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


Yaml12Loader.add_constructor("tag:yaml.org,2002:bool", _bool)
Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _float)


def load(text: str) -> Any:
    """The document in ``text`` under YAML 1.2 core rules (``yaml.YAMLError`` when malformed)."""
    return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
