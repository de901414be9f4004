"""The lazily imported module of realdoc_rollapp (one copy per release)."""

VERSION = "@VERSION@"
