"""The client's version (also the package's, see pyproject.toml)."""

__version__ = "0.2.0"
