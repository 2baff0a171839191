"""Domain values: frozen dataclasses that cross the layers."""
