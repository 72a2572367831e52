"""Liqscope's Qt views. Everything here observes one ``ViewState``; nothing reads files."""
