"""Side-by-side benchmarks of sciportal against GAVO DaCHS (``python -m bench.run``)."""
