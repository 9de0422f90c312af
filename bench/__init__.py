"""Benchmarks: the studio's speed, memory and demo figures against tutorial-style baselines (`python -m bench`).

Kept out of the `studio` library: they measure it from outside, and nothing in the studio imports them.
"""
