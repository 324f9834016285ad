"""The emlesion version, in a module of its own so that no module has to import the package
face (``emlesion/__init__.py``) back to read it."""

__version__ = "0.1.0"
