"""``deepinside serve``: the web app (parses arguments, calls :mod:`deepinside.web`)."""

from __future__ import annotations

import argparse

from ._common import add_model_args, model_from_args, positive_int


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of megabytes") from None
    if not 0 < value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 10000 MB, got {text}")
    return value


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, got {value}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="explore the model in the browser: explain photos, visualise classes, compare methods",
        description="A web page (Gradio) on this machine, on loopback unless --host says otherwise. "
        "Needs the web extra: pip install 'deepinside[web]'.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)"
    )
    p.add_argument("--port", type=_port, default=7860, help="port to listen on (default %(default)s)")
    p.add_argument(
        "--max-upload-mb",
        type=_megabytes,
        default=10.0,
        help="refuse larger uploads (default %(default)g MB)",
    )
    add_model_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import web

    # Before the model loads, so that these refusals come at once.
    web.check_installed()
    web.check_port(args.host, args.port)
    limits = web.Limits(max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels)
    return web.serve(model_from_args(args), args.host, args.port, limits)
