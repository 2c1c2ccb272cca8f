"""What every command module shares: click callbacks that take their options as one namespace.

The command modules (cli.py, search/cli.py, device_cli.py, demo.py) import this; cli.py gathers them
into the `edgeviz` group.
"""
from __future__ import annotations

from types import SimpleNamespace


def handler(func):
    """A click callback that hands its options to func as one namespace, the way every command
    handler (cmd_*) takes them."""
    def callback(**kw):
        return func(SimpleNamespace(**kw))
    callback.__name__ = func.__name__
    callback.__doc__ = func.__doc__
    return callback
