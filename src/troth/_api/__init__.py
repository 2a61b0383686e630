"""The public Python API's implementation; import it from `troth` (its `__all__`)."""
