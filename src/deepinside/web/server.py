"""Start the page: checks that fail fast with one line, then the framework.

Gradio is imported only here and only after its telemetry is switched off
in the environment (it reads the switch at import); the page loads no
fonts or scripts from outside, so it works on a machine with no internet.
"""

from __future__ import annotations

import errno
import functools
import importlib.util
import ipaddress
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import torch

from ..errors import DeepInsideError
from ..models.classifier import Classifier

if TYPE_CHECKING:
    from ..attribution.methods import Method
from .limits import Limits

INSTALL_HINT = "the web app needs its extra: pip install 'deepinside[web]'"


def check_installed() -> None:
    """Raise the one-line install hint when the web extra is missing."""
    if importlib.util.find_spec("gradio") is None:
        raise DeepInsideError(INSTALL_HINT)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(host: str, port: int) -> None:
    """Raise a one-line error when ``host:port`` cannot be listened on
    (taken by another server, or not an address of this machine)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the server will: a port left in TIME_WAIT by an earlier run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise DeepInsideError(
                    f"port {port} is in use on {host}: choose another with --port"
                ) from None
            if err.errno == errno.EACCES:
                raise DeepInsideError(
                    f"port {port} needs privileges on this machine: choose one above 1023 with --port"
                ) from None
            raise DeepInsideError(f"cannot listen on {host}:{port} ({err.strerror}): check --host") from None


def warn_if_exposed(host: str) -> None:
    """Say so when the page can be reached from other machines."""
    if not is_loopback(host):
        print(
            f"deepinside: warning: serving on {host}, not loopback: anyone who can reach this machine "
            "can use the page and its CPU (there is no login)",
            file=sys.stderr,
        )


def serve(model: Classifier, host: str = "127.0.0.1", port: int = 7860, limits: Limits | None = None) -> int:
    """Serve the page until Ctrl-C (or SIGTERM); uploads and results live in a
    temporary folder removed on the way out."""
    check_installed()
    check_port(host, port)
    limits = limits or Limits()
    warn_if_exposed(host)
    workdir = Path(tempfile.mkdtemp(prefix="deepinside-serve-"))
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "uploads")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(model, host, port, limits, workdir)
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(workdir, ignore_errors=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def warm_up(model: Classifier) -> None:
    """One map of each method, and of each localisation preset, before the
    first user: the gradient engine prepares its copy of the model for each
    kind of backward pass and input size on first use, which would
    otherwise land on a user's click (and, until the engine prepares
    copies safely beside other threads' passes, on a request running
    beside it)."""
    from ..attribution import METHODS
    from ..localization import PRESETS, localization_maps

    device = next(model.parameters()).device
    example = torch.zeros(1, model.preprocessing.channels, *model.preprocessing.input_size, device=device)
    first = torch.zeros(1, 1, dtype=torch.long, device=device)
    # Warnings and refusals here (DeconvNet without max pooling, a model with
    # no feature map for Grad-CAM) belong to the requests that ask for them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warms: list[Callable[[], object]] = [
            *(functools.partial(_warm_method, model, example, m) for m in METHODS.values()),
            *(functools.partial(localization_maps, model, example, first, c) for c in PRESETS.values()),
        ]
        for warm in warms:
            try:
                warm()
            except DeepInsideError:
                pass


def _warm_method(model: Classifier, example: torch.Tensor, method: type[Method]) -> None:
    """One map of ``method`` at its cheap settings (each is built from its
    declaration: a method added later is warmed up too)."""
    from ..attribution import saliency
    from ..attribution.methods import cheap_options, method_from_name

    saliency(model, example, 0, method_from_name(method.name, **cheap_options(method)))


def _run(model: Classifier, host: str, port: int, limits: Limits, workdir: Path) -> int:
    from .app import CSS, build_app, theme
    from .session import Server

    started = time.perf_counter()
    warm_up(model)
    app = build_app(Server(model, limits, workdir))
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        quiet=True,
        show_error=True,
        max_file_size=limits.max_upload_bytes,
        allowed_paths=[str(workdir)],
        footer_links=["api"],
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        theme=theme(),
        css=CSS,
    )
    url_host = f"[{host}]" if ":" in host else host
    print(
        f"deepinside: serving {model.name} at http://{url_host}:{port} "
        f"(ready in {time.perf_counter() - started:.1f} s; Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    try:
        app.block_thread()
    finally:
        app.close()
    return 0
