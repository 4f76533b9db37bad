"""What the commands that run one of the worker's loops alone share."""
import signal
import threading
from collections.abc import Callable


def run_until_stopped(run: Callable[[threading.Event], None]) -> None:
    """`run(stop)` in the foreground until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run(stop)
    except KeyboardInterrupt:
        pass
