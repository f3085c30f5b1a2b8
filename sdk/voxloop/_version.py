"""The SDK's version: the one place it is written (the build reads it, the User-Agent sends it)."""

__version__ = "0.3.0"
