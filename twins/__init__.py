"""twins package."""

__all__: list[str] = []
