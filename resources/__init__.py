"""Bundled, read-only resources: demo dataset, icons, styles."""
