"""Tests of the studio.evaluate package."""
