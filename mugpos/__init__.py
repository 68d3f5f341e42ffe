"""mugpos: eyes for mug placement, served to AI assistants over MCP."""

import os as _os

# The plane fit solves small least-squares problems (scipy -> OpenBLAS). OpenBLAS's own threads
# only add hand-offs at these sizes, and on a busy CPU (the detector's threads, other requests) they
# spin and stall: one 40-object photo took 27-78 s with the default threads and 1.9 s with one, on
# the 2-core test machine. Set before numpy loads; an explicit setting still wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
