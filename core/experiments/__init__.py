"""Experiments that test the question's claims side by side on the same network.

Each module has a ``run_*`` function (pure NumPy, with ``progress(done, total, text)`` and
``cancel() -> bool`` callbacks, returning None when cancelled) and a frozen result with a
``table()`` for CSV export.
"""
