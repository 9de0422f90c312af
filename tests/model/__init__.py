"""Tests of the studio.model package."""
