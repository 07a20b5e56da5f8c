"""How each rank script here starts watching for a hang and how it leaves (see test_ddp.py, test_agreement.py).

A rank that hangs must fail its test with the stacks of every rank, not as a bare subprocess
timeout: CI once saw a 2-rank run finish training and then never exit, with nothing to say where.
So each rank dumps its threads' stacks and exits when it runs past ``HANG_DUMP_S`` (below every
test's subprocess timeout), and dumps them too when torchrun stops it with SIGTERM because the
other rank failed.

Leaving: every rank passes a monitored barrier, which names a rank that never comes, and then
ends the process at once. Neither tearing down gloo's process group nor exiting with its threads
running is something these tests are about, and both can go wrong in gloo: the teardown now and
then hangs (pytorch/pytorch#75097), and an exit without it once aborted in C++ ("terminate called
without an active exception").
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
from datetime import timedelta

import torch.distributed as dist

HANG_DUMP_S = 150.0
LEAVE_TIMEOUT = timedelta(seconds=60)


def watch_for_hangs() -> None:
    """From now on, a rank past ``HANG_DUMP_S`` or stopped by torchrun prints every thread's stack."""
    faulthandler.dump_traceback_later(HANG_DUMP_S, exit=True)
    faulthandler.register(signal.SIGTERM, chain=True)


def leave_together() -> None:
    """Wait for every rank (naming any that does not come), then end this process with its output flushed."""
    dist.monitored_barrier(timeout=LEAVE_TIMEOUT)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
