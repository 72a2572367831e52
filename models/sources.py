"""Which dataset the app shows: the user's local store when it has data, else the demo."""
from __future__ import annotations

from .dataset import Dataset, load_demo
from .store import open_store


def load_dataset(prefer_demo: bool = False, start=None, end=None, liq_filter: dict | None = None) -> Dataset:
    """The user's data if the local store holds any, otherwise the bundled demo.

    A store larger than the memory budget opens as the part serving ``[start, end)`` (default: its
    busiest day); the rest is read when a view needs it (:mod:`.store.window`).
    """
    if not prefer_demo:
        store = open_store()
        if store.has_data():
            return read_store(store, start, end, liq_filter)
    return load_demo()


def read_store(store=None, start=None, end=None, liq_filter: dict | None = None) -> Dataset:
    """The store's dataset: all of it when it fits the budget, else the part for the window."""
    from .store.window import StoreWindows

    return StoreWindows(store if store is not None else open_store()).first(start, end, liq_filter)
