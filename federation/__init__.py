"""federation package."""

__all__: list[str] = []
