"""RFC 5323 basicsearch as Nextcloud's FileSearchBackend reads and evaluates it over simulated files."""

from __future__ import annotations

import operator as compare
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sync.nextcloud_simulator.dav_xml import DAV, SEARCHDAV, parse_body
from sync.nextcloud_simulator.properties import DISPLAYNAME, GETLASTMODIFIED, SIZE
from sync.nextcloud_simulator.storage import Node, SimulatedFolder, UserStorage

_COMPARISONS = {"eq", "gt", "gte", "lt", "lte", "like"}
_JUNCTIONS = {"and", "or", "not"}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_ATOM = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")
# Nextcloud returns at most this many results when the query sets no `d:nresults`.
DEFAULT_LIMIT = 100


class SearchError(Exception):
    """A query Nextcloud refuses: `status`, and the exception class Sabre names (None: a plain-text body)."""

    def __init__(self, status: int, message: str, exception: str | None = "InvalidArgumentException") -> None:
        super().__init__(message)
        self.status = status
        self.exception = exception


@dataclass(frozen=True)
class Condition:
    """One `d:where` operator: a comparison (`prop` and `literal` set) or and/or/not over `operands`."""

    operator: str
    prop: str = ""
    literal: str = ""
    operands: tuple[Condition, ...] = field(default=())


@dataclass(frozen=True)
class BasicSearch:
    select: list[str]
    scopes: list[str]
    where: Condition
    order: list[tuple[str, bool]]
    limit: int
    offset: int


def _parse_error(message: str) -> SearchError:
    # SearchDAV writes these straight into the response body, without Sabre's XML around them.
    return SearchError(400, f"Parse error: {message}", None)


def parse_search(body: bytes) -> BasicSearch:
    try:
        root = parse_body(body)
    except ValueError as error:
        raise _parse_error(str(error)) from None
    basic = root.find(f"{{{DAV}}}basicsearch") if root.tag == f"{{{DAV}}}searchrequest" else None
    if basic is None:
        raise SearchError(400, "Unexpected xml content for searchrequest, expected basicsearch", "BadRequest")
    where = basic.find(f"{{{DAV}}}where")
    if where is None or len(where) == 0:
        raise _parse_error("Missing {DAV:}where from {DAV:}basicsearch")
    select = basic.find(f"{{{DAV}}}select/{{{DAV}}}prop")
    if select is None:
        raise _parse_error("Missing {DAV:}select from {DAV:}basicsearch")
    return BasicSearch(
        select=[child.tag for child in select],
        scopes=[
            scope.findtext(f"{{{DAV}}}href", "") for scope in basic.iterfind(f"{{{DAV}}}from/{{{DAV}}}scope")
        ],
        where=_condition(where[0]),
        order=[_order(item) for item in basic.iterfind(f"{{{DAV}}}orderby/{{{DAV}}}order")],
        limit=_integer(basic.findtext(f"{{{DAV}}}limit/{{{DAV}}}nresults")),
        offset=_integer(basic.findtext(f"{{{DAV}}}limit/{{{SEARCHDAV}}}firstresult")),
    )


def _integer(text: str | None) -> int:
    try:
        return max(0, int((text or "0").strip()))
    except ValueError:
        raise _parse_error(f"not an integer: {text!r}") from None


def _order(element: ET.Element) -> tuple[str, bool]:
    prop = element.find(f"{{{DAV}}}prop")
    if prop is None or len(prop) == 0:
        raise _parse_error("{DAV:}order without a property")
    return prop[0].tag, element.find(f"{{{DAV}}}descending") is None


def _condition(element: ET.Element) -> Condition:
    operator = element.tag.removeprefix(f"{{{DAV}}}")
    if operator in _JUNCTIONS:
        return Condition(operator, operands=tuple(_condition(child) for child in element))
    if operator == "is-collection":
        return Condition(operator)
    if operator not in _COMPARISONS:
        raise SearchError(500, f"Unsupported operation {operator} ({element.tag})")
    prop, literal = element.find(f"{{{DAV}}}prop"), element.find(f"{{{DAV}}}literal")
    if prop is None or len(prop) == 0:
        raise SearchError(500, f"Invalid argument 1 for {operator} operation, expected property")
    if literal is None:
        raise SearchError(500, f"Invalid argument 2 for {operator} operation, expected literal")
    if prop[0].tag not in {GETLASTMODIFIED, DISPLAYNAME, SIZE}:
        raise SearchError(500, f"Unsupported property for search or order: {prop[0].tag}")
    return Condition(operator, prop=prop[0].tag, literal=literal.text or "")


def datetime_literal(text: str) -> float:
    """FileSearchBackend::castValue for dates: Unix seconds or ATOM, anything else silently 0."""
    if _NUMBER.fullmatch(text):
        return max(0.0, float(text))
    if _ATOM.fullmatch(text):
        return datetime.fromisoformat(text).timestamp()
    return 0.0


def sort_value(storage: UserStorage, node: Node, prop: str) -> float | str:
    if prop == GETLASTMODIFIED:
        return node.modified.timestamp()
    if prop == SIZE:
        return storage.size_of(node)
    if prop == DISPLAYNAME:
        return node.path.rpartition("/")[2]
    raise SearchError(500, f"Unsupported property for search or order: {prop}")


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": compare.eq,
    "gt": compare.gt,
    "gte": compare.ge,
    "lt": compare.lt,
    "lte": compare.le,
}


def _like(value: str, pattern: str) -> bool:
    expression = re.escape(pattern).replace("%", ".*").replace("_", ".")
    return re.fullmatch(expression, value, re.IGNORECASE) is not None


def _literal(prop: str, text: str) -> float | str:
    if prop == DISPLAYNAME:
        return text
    if prop == GETLASTMODIFIED:
        return datetime_literal(text)
    # castValue's `0 + $value` for integers: PHP's TypeError becomes this InvalidArgumentException.
    if not _NUMBER.fullmatch(text):
        raise SearchError(500, f"Invalid property value for {prop}")
    return float(text)


def matches(condition: Condition, storage: UserStorage, node: Node) -> bool:
    if condition.operator == "and":
        return all(matches(operand, storage, node) for operand in condition.operands)
    if condition.operator == "or":
        return any(matches(operand, storage, node) for operand in condition.operands)
    if condition.operator == "not":
        return not any(matches(operand, storage, node) for operand in condition.operands)
    if condition.operator == "is-collection":
        return isinstance(node, SimulatedFolder)
    value = sort_value(storage, node, condition.prop)
    literal = _literal(condition.prop, condition.literal)
    if condition.operator == "like":
        return _like(str(value), str(literal))
    return bool(_OPERATORS[condition.operator](value, literal))
