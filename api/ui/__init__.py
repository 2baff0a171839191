"""The stewards' web UI."""
