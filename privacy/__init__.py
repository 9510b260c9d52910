"""privacy package."""

__all__: list[str] = []
