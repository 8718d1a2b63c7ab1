"""``python -m client.api [--host H] [--port P]``: the API without the CLI (benchmarks, images)."""

from __future__ import annotations

import argparse

from sagaworks.client.api.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
