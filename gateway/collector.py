"""The garbage collector of a gateway process, set for a server's steady state.

Every request allocates a few hundred short-lived containers (the ASGI scope and headers, the
request, its task and futures, the records), and Python's default first-generation threshold
(700 allocations) ran a collection every request or two; the older generations, which hold
every module, table and template loaded at start, were walked with them. In a py-spy profile of
1-event batches under wrk, ``gc_collect_main`` took 8% of the event loop's samples; with
:func:`settle` the gateway answered 15-20% more requests a second in the same run (interleaved
A/B rounds, medians).

Reference counting still frees almost every object at once: the thresholds only space out the
collections that look for cycles, and a first-generation collection of 20,000 objects is still
a fraction of a millisecond. Only server processes call :func:`settle` (``voxloop-gateway serve``
and the ``voxloop_gateway.asgi`` module), once the application is built: a library importing the
gateway keeps its own collector as it was.
"""

from __future__ import annotations

import gc
from typing import Final

#: Allocations between first-generation collections, and collections between the older ones.
THRESHOLDS: Final = (20_000, 50, 50)


def settle() -> None:
    """Move every object alive now (what start-up loaded) out of the collector's sight, and space
    out the collections of what comes after."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
