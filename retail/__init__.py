"""retail package."""

__all__: list[str] = []
