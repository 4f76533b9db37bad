"""`python -m tests.uvicorn_fd FD APP [uvicorn options]`: uvicorn serving a TCP socket bound by the
test that started it. uvicorn's own `--fd` takes the socket for a Unix one, and its connections then
go without TCP_NODELAY (about 40 ms per keep-alive answer); `socket.socket(fileno=...)` reads the
family from the socket itself. Options: `--log-level LEVEL`, `--access-log true`."""
import socket
import sys

import uvicorn


def main() -> None:
    fd, app, *options = sys.argv[1:]
    settings = dict(zip(options[::2], options[1::2]))
    config = uvicorn.Config(app, log_level=settings.get("--log-level", "warning"), proxy_headers=False,
                            access_log=settings.get("--access-log") == "true")
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(fd))])


if __name__ == "__main__":
    main()
