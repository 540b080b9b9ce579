"""dgproto test suite."""
