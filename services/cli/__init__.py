"""allsource-cli: the command-line administration tool, a client of the public API only."""
