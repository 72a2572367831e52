"""Entry point of the PyInstaller bundle: the same ``main`` as the ``liqscope`` console script.

Kept outside the package so PyInstaller analyses the installed ``liqscope`` (from the
build venv), not the source folders, whose names differ from the import names.
"""
import sys

from liqscope.gui.main import main

if __name__ == "__main__":
    sys.exit(main())
