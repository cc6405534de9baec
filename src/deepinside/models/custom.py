"""Users' own classifiers: a TorchScript file, a ``torch.export`` program
(``.pt2``) or a ``package.module:factory``
import string, optionally with a state dict loaded safely (``weights_only``)."""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ..errors import DeepInsideError


def load_network(spec: str, weights: str | os.PathLike[str] | None = None) -> nn.Module:
    """The network named by ``spec`` (a TorchScript file, a ``torch.export``
    program ``.pt2`` or ``module:factory``),
    with ``weights`` (a state dict file) loaded into it when given."""
    if ":" in spec and not Path(spec).exists():
        net = _from_factory(spec)
    else:
        net = _from_file(Path(spec))
    if weights is not None:
        load_state_dict_file(net, weights)
    return net


def _from_factory(spec: str) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise DeepInsideError(f"model {spec!r}: write it as package.module:factory")
    with _working_folder_importable():
        try:
            module = importlib.import_module(module_name)
        except Exception as err:  # noqa: BLE001 - importing user code can raise anything
            raise DeepInsideError(f"cannot import {module_name!r} for model {spec!r}: {err}") from None
        factory = getattr(module, attr, None)
        if factory is None:
            raise DeepInsideError(f"{module_name!r} has no {attr!r} (model {spec!r})")
        try:
            net = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
        except Exception as err:  # noqa: BLE001 - the user's factory can raise anything
            raise DeepInsideError(f"model {spec!r}: {attr}() failed ({type(err).__name__}: {err})") from None
    if not isinstance(net, nn.Module):
        raise DeepInsideError(f"{spec!r} gave a {type(net).__name__}, not a torch.nn.Module")
    return net


@contextmanager
def _working_folder_importable() -> Iterator[None]:
    """The working folder first on the import path while the user's module
    loads, as ``python -m`` and uvicorn do: an installed ``deepinside`` script
    would otherwise not find ``mymodel.py`` beside the user."""
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        yield
    finally:
        if added and here in sys.path:
            sys.path.remove(here)


def _from_file(path: Path) -> nn.Module:
    if not path.is_file():
        raise DeepInsideError(
            f"model {str(path)!r} is neither a built-in name, a file, nor a 'package.module:factory'"
        )
    if path.suffix == ".pt2":
        return _from_exported(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
            return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, zipfile.BadZipFile, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DeepInsideError(
            f"{path}: not a TorchScript model ({first}); for a state dict use "
            "--model package.module:factory --weights FILE"
        ) from None


def _from_exported(path: Path) -> nn.Module:
    """A program saved with ``torch.export.save`` (the successor of TorchScript)."""
    # torch.export logs the whole traceback of a bad archive before raising.
    log = logging.getLogger("torch.export")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        return torch.export.load(str(path)).module()
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad archive
        raise DeepInsideError(f"{path}: not a torch.export program ({type(err).__name__})") from None
    finally:
        log.setLevel(level)


def load_state_dict_file(net: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a state dict with ``weights_only=True``: no pickled code runs."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DeepInsideError(f"{path}: no such weights file") from None
    except pickle.UnpicklingError:
        # weights_only refuses the classes a pickled whole model needs.
        raise DeepInsideError(
            f"{path}: holds pickled Python objects (a whole model?), not a plain state dict: "
            "save one with torch.save(model.state_dict(), PATH), or pass the model itself"
        ) from None
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        raise DeepInsideError(f"{path}: cannot load as a plain state dict ({type(err).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DeepInsideError(f"{path}: holds a {type(state).__name__}, not a state dict")
    misfit = describe_misfit(net.state_dict(), state)
    if misfit:
        raise DeepInsideError(f"{path}: does not fit the model: {misfit}")
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise DeepInsideError(f"{path}: does not fit the model ({str(err).splitlines()[0]})") from None


def describe_misfit(expected: Mapping[str, object], given: Mapping[str, object], shown: int = 3) -> str:
    """What keeps the state dict ``given`` from loading into a model whose own
    is ``expected``: the first few missing and unexpected keys and shape
    mismatches, or ``""`` when it fits."""

    def first(keys: list[str]) -> str:
        more = f", ... ({len(keys)} in all)" if len(keys) > shown else ""
        return ", ".join(keys[:shown]) + more

    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    mismatched = [
        f"{k} (file {_shape(given[k])}, model {_shape(expected[k])})"
        for k in expected
        if k in given and _shape(given[k]) != _shape(expected[k])
    ]
    parts = []
    if missing:
        parts.append(f"missing {first(missing)}")
    if unexpected:
        parts.append(f"unexpected {first(unexpected)}")
    if mismatched:
        parts.append(f"other shapes: {first(mismatched)}")
    if unexpected and all(k.startswith("module.") for k in unexpected):
        parts.append("the file's keys start with 'module.' (saved from DataParallel): strip that prefix")
    return "; ".join(parts)


def _shape(value: object) -> str:
    shape = getattr(value, "shape", None)
    return "x".join(map(str, shape)) if shape is not None and len(shape) else "scalar"
