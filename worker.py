"""Run the sagaworks worker from a checkout: ``python worker.py [--dev] [--help]``.

The worker itself is :mod:`sagaworks.worker` (``saga worker`` or ``python -m sagaworks.worker``
once installed); this file only keeps the repository's usual entry point.
"""

from sagaworks.worker import run

if __name__ == "__main__":
    run()
