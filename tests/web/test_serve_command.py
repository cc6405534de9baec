"""``deepinside serve``'s refusals: each one line, exit 2, nothing started."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from deepinside.web.server import check_port, is_loopback

from .conftest import free_port


def run_serve(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import sys; {prelude}from deepinside.cli import main; sys.exit(main(['serve', *sys.argv[1:]]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_a_port_in_use_is_named_with_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve("--port", str(port))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"deepinside: error: port {port} is in use on 127.0.0.1: choose another with --port"
    ]


def test_without_the_web_extra_it_says_how_to_install_it() -> None:
    # A None entry in sys.modules makes the import system report gradio as absent.
    done = run_serve(prelude="sys.modules['gradio'] = None; ")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "deepinside: error: the web app needs its extra: pip install 'deepinside[web]'"
    ]


def test_bad_flags_are_refused_by_the_parser() -> None:
    assert run_serve("--port", "70000").returncode == 2
    assert run_serve("--max-upload-mb", "0").returncode == 2


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def test_port_check_passes_a_free_port() -> None:
    check_port("127.0.0.1", free_port())


@pytest.mark.parametrize("host", ["0.0.0.0"])
def test_non_loopback_warning_text(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    from deepinside.web import server as web_server

    web_server.warn_if_exposed(host)
    assert capsys.readouterr().err.startswith(f"deepinside: warning: serving on {host}, not loopback")
