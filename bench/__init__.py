"""`make bench` / `python -m bench`: the pipeline's numbers beside their baselines, in one run.

See `bench/__main__.py` for the sections and BENCHMARKS.md for the latest results.
"""
