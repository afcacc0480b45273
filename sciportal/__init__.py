"""sciportal: an IVOA Virtual Observatory server for large sky surveys."""

__version__ = "0.1.0"
