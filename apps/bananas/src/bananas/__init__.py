"""The example application of nixecs: an inventory of bananas over HTTP."""

__version__ = "1.0.0"
