"""Tests of allsource-cli."""
