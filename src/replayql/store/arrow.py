"""Records to Arrow tables: the bulk path into a columnar store (one call per group commit, not per row)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

import pyarrow as pa

from replayql.store import schema

_ARROW_TYPES: dict[str, pa.DataType] = {
    schema.STRING: pa.string(), schema.INT: pa.int32(), schema.BIGINT: pa.int64(), schema.FLOAT: pa.float64(),
    schema.BOOL: pa.bool_(), schema.TIME: pa.timestamp("ms"), schema.JSON: pa.string(), schema.BLOB: pa.binary(),
}


def records_to_table(records: Sequence[Any], columns: Iterable[tuple[str, str]]) -> pa.Table:
    """Build a table from dataclass records; TIME columns hold epoch-ms integers."""
    arrays, names = [], []
    for name, logical in columns:
        values = list(map(attrgetter(name), records))
        arrays.append(pa.array(values, type=pa.int64() if logical == schema.TIME else _ARROW_TYPES[logical]))
        if logical == schema.TIME:
            arrays[-1] = arrays[-1].cast(pa.timestamp("ms"))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def rows_to_table(rows: Sequence[tuple[Any, ...]], columns: Sequence[tuple[str, str]]) -> pa.Table:
    """Build a table from plain tuples in column order."""
    transposed: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[] for _ in columns]
    arrays = []
    for values, (_, logical) in zip(transposed, columns, strict=True):
        if logical == schema.TIME:
            arrays.append(pa.array(values, type=pa.int64()).cast(pa.timestamp("ms")))
        else:
            arrays.append(pa.array(values, type=_ARROW_TYPES[logical]))
    return pa.Table.from_arrays(arrays, names=[name for name, _ in columns])
