"""The suite's version, as installed."""

from importlib import metadata

try:
    VERSION = metadata.version("allsource")
except metadata.PackageNotFoundError:  # running from a source tree that was not installed
    VERSION = "0+unknown"
