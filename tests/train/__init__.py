"""Tests of the studio.train package."""
