"""Operator tools that act on the pipeline's topics (e.g. `ksp deadletters`)."""
