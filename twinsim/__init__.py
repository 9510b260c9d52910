"""twinsim: privacy-first federated digital-twin simulator for retail loyalty programmes."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("twinsim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+src"
