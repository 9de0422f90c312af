"""Tests of the studio.publish package."""
