"""``deepinside serve``: explore a model in the browser, backed by the very
library calls the command line makes (an optional extra: ``pip install
'deepinside[web]'``; nothing here imports the framework until the server starts)."""

from .limits import Limits
from .server import INSTALL_HINT, check_installed, check_port, serve

__all__ = ["INSTALL_HINT", "Limits", "check_installed", "check_port", "serve"]
