"""adaptkit's version, read once from the installed package's metadata.

Its own module so that code inside the package never imports the package root (whose lazy
`load_policy` sits on top of the export layer): `from adaptkit.version import __version__`."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("adaptkit")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
