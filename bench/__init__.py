"""The benchmark harness (``python -m bench``) and the single-purpose benchmarks beside it.

``bench/README.md`` says what each measures and how. Nothing here is imported by the hub
or the nodes; it is run from the repository's root.
"""
