"""The package's version, in one place: ``pyproject.toml`` reads it at build time
(``[tool.setuptools.dynamic]``) and :data:`jwt_middleware.__version__` re-exports it.

Why a module and not ``importlib.metadata``: a checkout on ``sys.path`` that was never installed
has no metadata to read, and the build must not import the package (its dependencies may be
absent there); setuptools reads this plain assignment without running it.
"""

__version__ = "0.1.0"
