"""The package version, in one place (the client's User-Agent carries it)."""

__version__ = "0.1.0"
