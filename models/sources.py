"""Which dataset the app shows: the user's local store when it has data, else the demo."""
from __future__ import annotations

from .dataset import Dataset, load_demo
from .store import open_store


def load_dataset(prefer_demo: bool = False) -> Dataset:
    """The user's data if the local store holds any, otherwise the bundled demo."""
    if not prefer_demo:
        store = open_store()
        if store.has_data():
            return store.load_dataset()
    return load_demo()
