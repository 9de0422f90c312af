"""Tests of the studio.data package."""
