"""Use cases: open a unit of work, load, call the flow, save, commit."""
