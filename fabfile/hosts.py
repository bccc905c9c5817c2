"""Make a fab task run once for all -H hosts.

Fabric calls a task once per -H host, one after the other, each with a Connection to a
host of that *name*. Our tasks look names up in the inventory (and expand groups) and fan
out in parallel themselves, so the first call does the work for every -H host and the
calls for the remaining hosts return at once.
"""
import functools
import sys

_done: set[str] = set()


def cli_hosts(argv: list[str]) -> list[str]:
    """The values of fab's -H/--hosts options in `argv`, split on commas."""
    found: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if arg == "--":
            break
        if arg in ("-H", "--hosts"):
            found.extend(next(args, "").split(","))
        elif arg.startswith("--hosts="):
            found.extend(arg.split("=", 1)[1].split(","))
        elif arg.startswith("-H") and len(arg) > 2:
            found.extend(arg[2:].split(","))
    return [h for h in found if h]


def once_for_all_hosts(fn):
    @functools.wraps(fn)
    def wrapper(c, *args, **kwargs):
        key = fn.__name__
        if key in _done:
            return 0
        _done.add(key)
        hosts = cli_hosts(sys.argv) or ([c.original_host] if getattr(c, "original_host", None) else None)
        return fn(c, hosts, *args, **kwargs)

    # invoke reads the task's signature: hide the `hosts` parameter the wrapper supplies
    import inspect

    sig = inspect.signature(fn)
    params = [p for name, p in sig.parameters.items() if name != "hosts"]
    wrapper.__signature__ = sig.replace(parameters=params)
    del wrapper.__wrapped__
    return wrapper
