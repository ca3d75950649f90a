"""This repository's own tools, not shipped: the offline demo (`python -m tools.demo`) and the synth cache of
this app for the tests and benchmarks."""
