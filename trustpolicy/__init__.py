"""trustpolicy: decide whether a restored NuGet package graph may be trusted."""

__version__ = "0.1.0"
