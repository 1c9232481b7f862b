"""smartshare: share a region's apps, adopt them in another, in one command."""

__version__ = "0.1.0"
