"""A keyed Query for moto's DynamoDB that reads one partition, not the whole table.

moto 5.2.5's ``Table.query`` walks every item of the table to find the partition's, sorts them with
Python-level comparisons, compares each with the range condition, measures each item twice and
deep-copies the page. A sync of 1,000 missed messages spent most of its time there. DynamoDB
itself reads only the partition's items in the key range; so does this, for the Queries the chat
makes (equality on the hash key, at most one condition on a string sort key, either direction,
``Limit``, ``ExclusiveStartKey``, filter and projection expressions), and answers exactly what
moto's own code answers: the same items in the same order, the same ``Count`` and
``ScannedCount``, the same ``LastEvaluatedKey`` at ``Limit`` or at the 1 MB page cut-off
(tests/local_stack/test_moto_query.py runs both over the same tables). Anything else (an index,
the legacy ``QueryFilter``, a composite key, a number or binary sort key) returns None, and the
caller runs moto's own code.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

# A page: the items, ScannedCount, LastEvaluatedKey (what moto's Table.query returns).
Answer = tuple[list[Item], int, dict[str, Any] | None]
# Where a range condition's items start and end among the partition's sort keys, ascending.
_Bounds = Callable[[Sequence[str], list[str]], tuple[int, int]]
_BOUNDS: dict[str | None, _Bounds] = {
    None: lambda keys, _: (0, len(keys)),
    "=": lambda keys, v: (bisect.bisect_left(keys, v[0]), bisect.bisect_right(keys, v[0])),
    "<": lambda keys, v: (0, bisect.bisect_left(keys, v[0])),
    "<=": lambda keys, v: (0, bisect.bisect_right(keys, v[0])),
    ">": lambda keys, v: (bisect.bisect_right(keys, v[0]), len(keys)),
    ">=": lambda keys, v: (bisect.bisect_left(keys, v[0]), len(keys)),
    "BETWEEN": lambda keys, v: (bisect.bisect_left(keys, v[0]), bisect.bisect_right(keys, v[1])),
    # Every string with the prefix sorts at or after it; the end is found by comparing (below).
    "BEGINS_WITH": lambda keys, v: (bisect.bisect_left(keys, v[0]), len(keys)),
}


def keyed_query(
    table: Table,
    hash_key_dict: dict[str, Any] | None,
    range_comparison: str | None,
    range_value_dicts: list[dict[str, Any]],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    *,
    index_name: str | None,
    hash_key_conditions: list[Any] | None,
    range_key_conditions: list[Any] | None,
    filter_kwargs: dict[str, Any],
) -> Answer | None:
    """The page moto's ``Table.query`` finds before it filters and projects (the items, the
    ScannedCount, the LastEvaluatedKey); None when the Query is not one this handles."""
    operator = range_comparison  # as moto's parser writes it: "=", "<", ..., "BETWEEN", "BEGINS_WITH"
    values = _strings(range_value_dicts)
    if (
        index_name is not None
        or filter_kwargs
        or table.range_key_attr is None
        or hash_key_dict is None
        or len(hash_key_conditions or []) > 1
        or len(range_key_conditions or []) > 1
        or operator not in _BOUNDS
        or values is None
        or len(values) != (0 if operator is None else 2 if operator == "BETWEEN" else 1)
        or (limit is not None and (type(limit) is not int or limit < 1))
    ):
        return None
    hash_key = DynamoType(hash_key_dict)
    partition: dict[DynamoType, Item] = table.items.get(hash_key, {})
    if any(key.type != "S" for key in partition):
        return None
    ordered = sorted(partition.items(), key=lambda pair: pair[0].value)
    keys = [key.value for key, _ in ordered]
    unread = _unread(table, hash_key_dict, exclusive_start_key, keys, scan_index_forward)
    if unread is None:
        return None
    first, end = unread
    low, high = _BOUNDS[operator](keys, values)
    if operator == "BEGINS_WITH":
        high = low
        while high < len(keys) and keys[high].startswith(values[0]):
            high += 1
    # Positions in ascending key order; a backward Query reads them from the end.
    low, high = min(max(low, first), end), min(max(high, first), end)
    items = [item for _, item in ordered]
    if scan_index_forward:
        return _page(table, items[low:high], items[high:end], limit)
    return _page(table, items[low:high][::-1], items[first:low][::-1], limit)


def _strings(value_dicts: list[dict[str, Any]]) -> list[str] | None:
    """The condition's values when every one is a string ({"S": ...}); None otherwise."""
    strings = []
    for value in value_dicts:
        if set(value) != {"S"} or not isinstance(value["S"], str):
            return None
        strings.append(value["S"])
    return strings


def _unread(
    table: Table,
    hash_key_dict: dict[str, Any],
    start_key: dict[str, Any] | None,
    keys: list[str],
    forward: bool,
) -> tuple[int, int] | None:
    """The positions (ascending, end excluded) of the partition's items that lie after
    ``ExclusiveStartKey`` in the Query's direction (all without one); None for a start key this
    does not handle (another partition's, or not a string key of this table)."""
    if start_key is None:
        return 0, len(keys)
    range_attr = table.range_key_attr
    assert range_attr is not None
    if set(start_key) != {table.hash_key_attr, range_attr} or start_key[table.hash_key_attr] != hash_key_dict:
        return None
    position = _strings([start_key[range_attr]])
    if position is None:
        return None
    if forward:
        return bisect.bisect_right(keys, position[0]), len(keys)
    return 0, bisect.bisect_left(keys, position[0])


def _page(
    table: Table, matching: list[Item], trailing: list[Item], limit: int | None
) -> tuple[list[Item], int, dict[str, Any] | None]:
    """moto's page loop over the matching items, in the Query's order: stop before the item that
    would exceed ``Limit`` or 1 MB, and give the last item's key as ``LastEvaluatedKey`` when any
    item (matching or not) was left unread. Items before the first match never stop moto's loop (an
    empty page is under any ``Limit`` of 1 or more, and no item exceeds 1 MB: moto refuses items over
    400 KB), so they are skipped without being read."""
    results: list[Item] = []
    size = 0
    for item in matching:
        item_size = _size(item)
        if len(results) == limit or size + item_size > RESULT_SIZE_LIMIT:
            return results, len(results), _key_of(table, results[-1])
        results.append(item)
        size += item_size
    if results and any(len(results) == limit or size + _size(item) > RESULT_SIZE_LIMIT for item in trailing):
        return results, len(results), _key_of(table, results[-1])
    return results, len(results), None


def _size(item: Item) -> int:
    """``item.size()``, with strings and numbers (every attribute of a chat item) measured here
    rather than through moto's chain of type tests: the same bytes counted, a fifth of the time."""
    total = 0
    for name, value in item.attrs.items():
        total += len(name.encode())
        if value.type == "S" and isinstance(value.value, str):
            total += len(value.value.encode())
        elif value.type == "N":
            total += len(str(value.value))
        else:
            total += value.size()
    return total


def _key_of(table: Table, item: Item) -> dict[str, Any]:
    key = {table.hash_key_attr: item.hash_key}
    if table.range_key_attr is not None and item.range_key is not None:
        key[table.range_key_attr] = item.range_key
    return key
