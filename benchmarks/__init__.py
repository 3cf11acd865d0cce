"""goth_actors' benchmarks: ``uv run python -m benchmarks`` (add ``--quick`` for a fast run).

Writes a Markdown table to stdout and ``benchmarks/results/results.md``, and the raw figures to
``benchmarks/results/results.json``. See `benchmarks.run` for the options.
"""
