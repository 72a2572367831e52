"""The window's data hub: the one holder of the shown dataset, and the one announcement of a swap.

Like glue's hub: views do not keep their own reference to the dataset (or to
facts derived from it, like the time origin of the x axes); they read
``hub.dataset`` / ``hub.origin_s`` when they draw and listen to
``dataset_changed`` (a new dataset: background load, import, fetch, the
recorder taking over from the demo) or ``data_appended`` (live events merged
into the current one). A swap is announced once, after the hub holds it.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from liqscope.models.dataset import Dataset


def dataset_origin(ds: Dataset) -> float:
    """Seconds of the first whole UTC day in the data: the x origin of every pane.

    Views plot ``t - origin`` (float32 paths in Qt lose seconds at raw epochs).
    """
    r = ds.time_range()
    return 0.0 if r is None else float(r[0].floor("D").value // 1_000_000_000)


class DataHub(QObject):
    dataset_changed = Signal(object)   # the new Dataset
    data_appended = Signal()           # the current dataset grew in place (live events)

    def __init__(self, dataset: Dataset | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._dataset = dataset if dataset is not None else Dataset(label="Loading data…")
        self._origin_s = dataset_origin(self._dataset)

    @property
    def dataset(self) -> Dataset:
        return self._dataset

    @property
    def origin_s(self) -> float:
        """Fixed per dataset: live appends never move the origin (drawn x values stay valid)."""
        return self._origin_s

    def set_dataset(self, dataset: Dataset) -> None:
        self._dataset = dataset
        self._origin_s = dataset_origin(dataset)
        self.dataset_changed.emit(dataset)

    def append_liquidations(self, events) -> int:
        """Merge live events into the current dataset; announce once if any were new."""
        added = self._dataset.append_liquidations(events)
        if added and not self._origin_s and self._dataset.time_range() is not None:
            self.set_dataset(self._dataset)  # the first events of an empty store: it now has an origin
        elif added:
            self.data_appended.emit()
        return added
