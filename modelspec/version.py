"""The version of modelspec, in one place: the package, the CLI, the parser's cache and the build read it here."""

__version__ = "0.1.0"
