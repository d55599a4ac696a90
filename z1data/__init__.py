"""z1data: build and prove efficient-reasoning code datasets."""

import os

# torch's CPU kernels run on an OpenMP team whose threads spin between kernels unless told otherwise. Beside
# any other work (sandbox workers, a second engine process, a benchmark, another job) a descheduled thread
# stalls every barrier and CPU decoding slows several-fold; sleeping threads cost little on an idle machine
# (bench/omp_wait.py, docs/generate.md). OpenMP reads this once, at start: set here, before any z1data module
# imports torch. An OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
