"""Which dataset the app shows: the user's local store when it has data, else the demo."""
from __future__ import annotations

from .dataset import Dataset, load_demo


def load_dataset(prefer_demo: bool = False) -> Dataset:
    """The user's data if the local store holds any, otherwise the bundled demo."""
    if not prefer_demo:
        try:
            from .store import open_store  # added with the local store
        except ImportError:
            open_store = None
        if open_store is not None:
            store = open_store()
            if store.has_data():
                return store.load_dataset()
    return load_demo()
