"""A read-only ``QAbstractTableModel`` over a pandas DataFrame that sorts with numpy.

Why not ``QSortFilterProxyModel``: it compares row pairs through Python callbacks,
which takes seconds at 100k rows. Here ``sort()`` computes one numeric key per
column (ranks for text, int64 for times) and a stable ``argsort``; cells are
formatted only when the view asks for them, i.e. only for the visible rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from liqscope.models.format import number
from liqscope.models.timeutil import format_time

RAW_ROLE = Qt.ItemDataRole.UserRole  # the unformatted value (float, str, pd.Timestamp)


def iso_utc(ts: pd.Timestamp) -> str:
    """Order times as the CSV writes them (milliseconds, Z)."""
    return format_time(ts, "iso_ms")


def usd_exact(x: float) -> str:
    return f"${x:,.0f}"


def percent(x: float) -> str:
    return f"{x:.1%}"


@dataclass(frozen=True)
class Column:
    """One displayed column: frame column ``key``, header ``title``, how to format a cell."""

    key: str
    title: str
    fmt: Callable[[Any], str] | None = None
    numeric: bool | None = None  # right-align; None = guess from the dtype


def _auto_format(series: pd.Series) -> Callable[[Any], str]:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return lambda v: iso_utc(pd.Timestamp(v))
    if pd.api.types.is_integer_dtype(series.dtype):
        return lambda v: f"{int(v):,}"
    if pd.api.types.is_float_dtype(series.dtype):
        return number
    return str


def sort_key(series: pd.Series) -> np.ndarray:
    """A numeric array whose order is the column's natural order (text: alphabetical rank)."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return pd.DatetimeIndex(series).asi8.astype("float64")
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan)
    if isinstance(dtype, pd.CategoricalDtype):
        cats = np.asarray(dtype.categories.astype(str))
        rank = np.empty(len(cats), dtype="float64")
        rank[np.argsort(cats, kind="stable")] = np.arange(len(cats))
        codes = series.cat.codes.to_numpy()
        return np.where(codes >= 0, rank[codes], np.nan)
    _, inverse = np.unique(series.astype(str).to_numpy(), return_inverse=True)
    return inverse.astype("float64")


class DataFrameModel(QAbstractTableModel):
    """Rows of a DataFrame; the display role formats, ``RAW_ROLE`` returns the value."""

    def __init__(self, columns: list[Column] | None = None, parent=None):
        super().__init__(parent)
        self._spec = columns
        self._columns: list[Column] = list(columns or [])
        self._frame = pd.DataFrame()
        self._order = np.empty(0, dtype="int64")       # view row -> frame row
        self._fmt: list[Callable[[Any], str]] = []
        self._numeric: list[bool] = []
        self._keys: dict[int, np.ndarray] = {}
        self._arrays: dict[int, tuple[bool, np.ndarray]] = {}  # column -> (is_time, values) for data()
        self.sort_column: int | None = None
        self.sort_order = Qt.SortOrder.AscendingOrder

    # -- data in -------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """The frame in frame order (not the sorted display order)."""
        return self._frame

    def set_frame(self, frame: pd.DataFrame) -> None:
        """Replace the rows, keeping the current sort column and direction."""
        self.beginResetModel()
        self._frame = frame.reset_index(drop=True)
        if self._spec is None:
            self._columns = [Column(str(c), str(c)) for c in self._frame.columns]
        self._fmt = [c.fmt or _auto_format(self._frame[c.key]) for c in self._columns]
        self._numeric = [c.numeric if c.numeric is not None else
                         pd.api.types.is_numeric_dtype(self._frame[c.key].dtype) for c in self._columns]
        self._keys = {}
        self._arrays = {}
        self._order = np.arange(len(self._frame), dtype="int64")
        if self.sort_column is not None:
            self._order = self._sorted(self.sort_column, self.sort_order)
        self.endResetModel()

    # -- Qt model API --------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._order)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._fmt[col](self._value(index.row(), col))
        if role == RAW_ROLE:
            return self._value(index.row(), col)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            h = Qt.AlignmentFlag.AlignRight if self._numeric[col] else Qt.AlignmentFlag.AlignLeft
            return int(h | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self._columns[section].title if section < len(self._columns) else None
        return str(section + 1)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Stable numpy sort; descending keeps ties in their original (frame) order."""
        self.layoutAboutToBeChanged.emit()
        self.sort_column, self.sort_order = column, order
        self._order = self._sorted(column, order)
        self.layoutChanged.emit()

    # -- helpers -------------------------------------------------------------
    def _sorted(self, column: int, order: Qt.SortOrder) -> np.ndarray:
        if column >= len(self._columns) or self._columns[column].key not in self._frame.columns:
            return np.arange(len(self._frame), dtype="int64")  # no rows yet: remember the sort only
        if column not in self._keys:
            self._keys[column] = sort_key(self._frame[self._columns[column].key])
        key = self._keys[column]
        if order == Qt.SortOrder.DescendingOrder:
            key = -key
        return np.argsort(key, kind="stable")  # NaN sorts last either way

    def _array(self, col: int) -> tuple[bool, np.ndarray]:
        """One column as a plain numpy array, built once: per-cell pandas indexing is ~50x slower."""
        if col not in self._arrays:
            series = self._frame[self._columns[col].key]
            if pd.api.types.is_datetime64_any_dtype(series.dtype):
                idx = pd.DatetimeIndex(series)
                idx = idx.tz_convert("UTC") if idx.tz is not None else idx
                self._arrays[col] = (True, idx.as_unit("ns").asi8)
            elif isinstance(series.dtype, pd.CategoricalDtype):
                names = np.append(np.asarray(series.cat.categories.astype(str), dtype=object), None)
                self._arrays[col] = (False, names[series.cat.codes.to_numpy()])  # code -1 -> None
            else:
                self._arrays[col] = (False, series.to_numpy())
        return self._arrays[col]

    def _value(self, row: int, col: int):
        is_time, values = self._array(col)
        value = values[int(self._order[row])]
        if is_time:
            return pd.Timestamp(int(value), tz="UTC")
        return value.item() if isinstance(value, np.generic) else value

    def column_index(self, key: str) -> int:
        return [c.key for c in self._columns].index(key)

    def row(self, view_row: int) -> pd.Series:
        """The frame row shown at ``view_row`` (raw values)."""
        return self._frame.iloc[int(self._order[view_row])]

    def column_values(self, key: str) -> np.ndarray:
        """One column in display order (what a user reads top to bottom)."""
        return self._frame[key].to_numpy()[self._order]
