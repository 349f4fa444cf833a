"""Loaders for public benchmarks (DESIGN §9): pinned upstream files, verified, mapped onto Items.

`fetch` resolves each file (``--data-dir`` / ``TRUSTDIFF_DATA_DIR``, the cache, or a verified
download); one module per family maps its rows onto the labels the dimension modules and judges
read; `registry` turns them into `SuiteEntry`s. Kept import-light: nothing is read until a suite
is loaded.
"""
