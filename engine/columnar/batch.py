"""A batch held as columns: a polars DataFrame, and the records it stands for.

A :class:`ColumnBatch` is a ``Sequence`` of records, so any code written for a list of
dicts still works on it (it turns into records once, on first use). Columnar-aware code
reads ``frame`` instead. ``exact`` says the frame is the records themselves (each record
has every column, in the frame's order, with values of the column's type): its JSON
Lines are then the frame's own, written without going through Python objects.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, overload

from engine.records import Record

if TYPE_CHECKING:
    import polars as pl

__all__ = ["ColumnBatch", "column_type", "polars_failures"]

_TYPES = {"String": "str", "Int64": "int", "Float64": "float", "Boolean": "bool", "Null": "null"}


def polars_failures() -> tuple[type[BaseException], ...]:
    """What a polars call may raise where the row path can do the work instead: its own
    errors, and the KeyboardInterrupt polars raises when a SIGINT or SIGTERM arrives while
    it runs (the engine stops on those signals itself, draining what is in flight)."""
    import polars as pl

    return (pl.exceptions.PolarsError, KeyboardInterrupt)


def column_type(dtype: object) -> str:
    """The JSON type a column's values have on the row path ("other": none of ours)."""
    return _TYPES.get(type(dtype).__name__, "other")


class ColumnBatch(Sequence[Record]):
    """Records as columns; see the module docstring."""

    __slots__ = ("_build", "_finite", "_frame", "_make", "_records", "_shape", "exact", "others")
    others: Sequence[str]

    def __init__(
        self,
        frame: pl.DataFrame | Callable[[], pl.DataFrame],
        *,
        exact: bool,
        records: list[Record] | Callable[[], list[Record]] | None = None,
        others: Sequence[str] = (),
        shape: tuple[tuple[str, str, bool], ...] | None = None,
        finite: bool = False,
    ) -> None:
        # a callable: the columns are made on first use (from records that exist already)
        self._frame = None if callable(frame) else frame
        self._build = frame if callable(frame) else None
        self.exact = exact
        #: fields the records hold that the frame leaves out (values of mixed types)
        self.others = others  # filled by a frame made on first use
        self._records = records if isinstance(records, list) else None
        self._make = records if callable(records) else None
        #: each column's name, JSON type and whether it holds a null, when known already
        self._shape = shape
        #: whether every float of the frame is known to be finite
        self._finite = finite

    # -- as columns -----------------------------------------------------------------------
    @property
    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            assert self._build is not None
            self._frame, self._build = self._build(), None
        return self._frame

    @property
    def built(self) -> bool:
        """Whether the columns exist (a batch of decoded records makes them on first use)."""
        return self._frame is not None

    def shape(self) -> tuple[tuple[str, str, bool], ...]:
        """Each column's name, JSON type and whether it holds a null (cached)."""
        if self._shape is None:
            frame = self.frame
            nulls = frame.null_count().row(0) if frame.width else ()
            found = [
                (name, column_type(dtype), bool(count))
                for (name, dtype), count in zip(frame.schema.items(), nulls, strict=True)
            ]
            found.extend((name, "other", True) for name in self.others)
            self._shape = tuple(found)
        return self._shape

    def select(self, frame: pl.DataFrame, *, finite: bool = False) -> ColumnBatch:
        """A batch of new records (a map's output): the frame is all there is of them;
        ``finite``: its floats are known to be finite."""
        return ColumnBatch(frame, exact=True, finite=finite)

    def take(self, mask: pl.Series) -> ColumnBatch:
        """The records where ``mask`` is true (a filter's or a route's output)."""
        kept = self.frame.filter(mask)

        def records() -> list[Record]:
            return [r for r, keep in zip(self.records(), mask, strict=True) if keep]

        if self.exact:
            return ColumnBatch(kept, exact=True, others=self.others)
        return ColumnBatch(kept, exact=False, records=records, others=self.others)

    def writes_ndjson(self) -> bool:
        """Whether the frame writes the records' JSON Lines itself, exactly as the row
        path's encoder writes them (no: encode the records instead)."""
        if not self.exact or self.others:
            return False
        if self._finite:
            return True
        import polars as pl

        frame = self.frame
        floats = [name for name, dtype in frame.schema.items() if dtype == pl.Float64]
        if floats:
            try:
                finite = pl.all_horizontal(pl.col(floats).is_finite().all())
                if not frame.select(finite).item():
                    return False  # NaN and infinities: the row encoder says which record
            except polars_failures():
                return False
        self._finite = True
        return True

    def write_ndjson(self, file: BinaryIO) -> None:
        """Write the records as JSON Lines to ``file`` (after :meth:`writes_ndjson`): a
        file with a descriptor is written by polars without going through Python."""
        if self.frame.height:
            self.frame.write_ndjson(file)

    def ndjson(self) -> bytes | None:
        """The records as JSON Lines, when :meth:`writes_ndjson` (else None)."""
        if not self.writes_ndjson():
            return None
        buffer = io.BytesIO()
        try:
            self.write_ndjson(buffer)
        except polars_failures():
            return None
        return buffer.getvalue()

    # -- as records -----------------------------------------------------------------------
    def records(self) -> list[Record]:
        """The records, as the row path has them (made once)."""
        if self._records is None:
            if self._make is not None:
                self._records, self._make = self._make(), None
            else:
                self._records = self.frame.to_dicts()
        return self._records

    def __len__(self) -> int:
        return self.frame.height if self._records is None else len(self._records)

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Record]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return self.records()[index]
        return self.records()[index]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"ColumnBatch({len(self)} records, exact={self.exact})"
