"""simulation package."""

__all__: list[str] = []
