"""trustpolicy's machinery: not a public API, may change without notice.

The public API is what `trustpolicy` itself exports (see trustpolicy/__init__.py)."""
