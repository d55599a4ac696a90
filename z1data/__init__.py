"""z1data: build and prove efficient-reasoning code datasets."""

import os

# torch's CPU kernels run on an OpenMP team whose threads spin between kernels unless told otherwise. Beside
# any other work (sandbox workers, a second engine process, a benchmark, another job) a descheduled thread
# stalls every barrier: two smol decoders at once got 32 tok/s spinning, 86 sleeping; one alone loses 17%
# sleeping (bench/omp_wait.py, docs/generate.md). OpenMP reads this once, at start: set here, before any z1data module
# imports torch. An OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
