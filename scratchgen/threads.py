"""How many threads training uses, in each of the two pools, and why.

Two thread pools do scratchgen's arithmetic on the CPU:

* the BLAS that NumPy loaded (OpenBLAS here): every matrix product - most of a training step;
* Numba's (backend "numba"): the fused elementwise loops, which split over threads only when
  their arrays have at least ``PARALLEL_MIN`` (262,144) elements (``kernels/numba_cpu/_jit.py``).

Both keep their idle threads *spinning* for a while after each parallel call (OpenBLAS for about
0.1 s, libgomp for a few hundred thousand spins) so that the next call starts at once. Two pools
that alternate every few microseconds, as a training step makes them, therefore steal each
other's cores; and on a machine whose cores other processes also want, a parallel call waits for
its slowest thread to be scheduled. Measured on this project's 2-core VM while other jobs ran
(VAE 784-400-20, batch 128, numba backend, CPU milliseconds per step): 1 thread each 10;
OpenBLAS 2 + Numba 2 (nothing set, what a user gets from NumPy and Numba) 192; numpy backend with
OpenBLAS at 2, 146. Throughput fell 10-20x, not the 2x a bad split would cost.

So ``Trainer.fit`` (``scratchgen train`` and every model's ``fit``) runs under ``training_threads``:

1. If the user chose, nothing changes: any of ``SCRATCHGEN_NUM_THREADS`` (one number for both
   pools, but see 3), ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
   ``NUMBA_NUM_THREADS`` set in the environment means the pools keep the sizes they were given.
2. Otherwise both pools get ``default_threads()``: **1 on a machine with at most 2 usable
   cores**, where the measurements above say a second thread costs more than it brings (a
   dedicated, idle 2-core machine can gain from 2: set ``SCRATCHGEN_NUM_THREADS=2``), and all
   usable cores on larger machines.
3. On a machine with at most 2 usable cores Numba's pool stays at **one thread** whatever the
   count (``numba_thread_count``): BLAS gets the second core. Its threads and Numba's would
   otherwise take turns on the same two cores. Measured on the idle 2-core VM, two runs of
   ``python -m benchmarks.bench_pools`` (numba backend, median step time of 6 and 8 interleaved
   rounds; BLAS threads / Numba threads):

   | model | 1 / 1 | 2 / 2 | 2 / 1 | 1 / 2 |
   |---|---|---|---|---|
   | VAE 784-400-20, batch 128 | 9.7, 9.2 ms | 7.6, 7.8 ms | 7.1, 7.5 ms | 11.9, 11.2 ms |
   | DCGAN, batch 64 | 221, 232 ms | 163, 179 ms | 172, 168 ms | 238, 221 ms |

   A parallel Numba loop (only arrays of ``PARALLEL_MIN`` elements or more: Adam over the VAE's
   652k parameters, the DCGAN's largest activations) gains nothing on two cores and costs the
   VAE ~2 ms a step; with BLAS at 2, Numba serial is the faster VAE in every run and level with
   2 / 2 on the DCGAN (within the rounds' spread). On larger machines both pools get the count.

The limits hold for the training loop only (``threadpoolctl`` sets BLAS's and restores it after;
Numba's is per calling thread). Without threadpoolctl installed BLAS cannot be resized once NumPy
has loaded it, and ``describe()`` says so. In addition, loading the numba backend starts Numba's
OpenMP threading layer with ``OMP_WAIT_POLICY=PASSIVE`` unless the user set that variable (and
removes it again, so that other libraries and processes see the user's environment): Numba's
idle workers then sleep at once instead of spinning against BLAS's threads (a parallel loop pays
~10-20 us to wake them, and runs only on arrays large enough for that not to matter).

``scratchgen info`` prints ``describe()``: what each pool really uses, and where that came from.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Dict, Iterator, List, Optional

__all__ = ["VARIABLES", "user_settings", "usable_cores", "default_threads", "training_thread_count",
           "numba_thread_count", "training_threads", "describe"]

VARIABLES = ("SCRATCHGEN_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
SMALL_MACHINE_CORES = 2  # at most this many usable cores: one thread by default (see the module docstring)


def user_settings() -> Dict[str, str]:
    """The thread variables the user set (name -> value), in ``VARIABLES`` order."""
    return {name: os.environ[name] for name in VARIABLES if os.environ.get(name, "").strip()}


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity; os.cpu_count() where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """1 on a machine with at most ``SMALL_MACHINE_CORES`` usable cores, else all of them."""
    cores = usable_cores()
    return 1 if cores <= SMALL_MACHINE_CORES else cores


def training_thread_count() -> Optional[int]:
    """The thread count ``training_threads`` imposes: ``SCRATCHGEN_NUM_THREADS`` if set, None when
    the user set any other thread variable (their pools stay as they are), else ``default_threads()``."""
    chosen = os.environ.get("SCRATCHGEN_NUM_THREADS", "").strip()
    if chosen:
        try:
            value = int(chosen)
        except ValueError:
            raise ValueError(f"SCRATCHGEN_NUM_THREADS={chosen!r}: expected a positive integer") from None
        if value < 1:
            raise ValueError(f"SCRATCHGEN_NUM_THREADS={chosen!r}: expected a positive integer")
        return value
    if user_settings():
        return None
    return default_threads()


def numba_thread_count(count: int) -> int:
    """Numba's share of ``count`` training threads: 1 on a machine with at most
    ``SMALL_MACHINE_CORES`` usable cores (BLAS takes the second core: see the module docstring),
    else ``count``."""
    return 1 if usable_cores() <= SMALL_MACHINE_CORES else count


@contextlib.contextmanager
def training_threads() -> Iterator[Optional[int]]:
    """Run the block with BLAS at ``training_thread_count()`` threads and Numba at
    ``numba_thread_count`` of it (both restored afterwards).

    Yields the count imposed, or None when the user's own settings are left in force.
    """
    count = training_thread_count()
    if count is None:
        yield None
        return
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=count, user_api="blas"))
        except ImportError:
            pass
        numba = sys.modules.get("numba")
        if numba is not None and "scratchgen.kernels.numba_cpu" in sys.modules:
            previous = numba.get_num_threads()
            numba.set_num_threads(min(numba_thread_count(count), numba.config.NUMBA_NUM_THREADS))
            stack.callback(numba.set_num_threads, previous)
        yield count


def describe() -> List[str]:
    """What each pool uses now and where that came from, for ``scratchgen info``."""
    chosen = user_settings()
    lines = ["set by you: " + (", ".join(f"{k}={v}" for k, v in chosen.items()) if chosen else "none")]
    count = training_thread_count()
    cores = usable_cores()
    if count is None:
        lines.append(f"training: your settings (both pools as set above; {cores} usable cores)")
    else:
        pools = (f"{count} thread(s) in each pool" if numba_thread_count(count) == count else
                 f"BLAS {count} thread(s), Numba {numba_thread_count(count)} (on {cores} usable cores "
                 f"its parallel loops would take turns with BLAS's threads)")
        if "SCRATCHGEN_NUM_THREADS" in chosen:
            lines.append(f"training: {pools} (SCRATCHGEN_NUM_THREADS)")
        else:
            why = (f"this machine has {cores} usable core(s): one thread avoids two spinning pools "
                   f"competing for them" if cores <= SMALL_MACHINE_CORES else f"all {cores} usable cores")
            lines.append(f"training: {pools} by default ({why}; SCRATCHGEN_NUM_THREADS=N chooses)")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            lines.append(f"now (outside training): {pool.get('internal_api', pool.get('user_api'))} {pool.get('num_threads')} thread(s) "
                         f"({os.path.basename(pool.get('filepath', ''))})")
    except ImportError:
        lines.append("BLAS pool: unknown, and not resizable at run time (pip install threadpoolctl; "
                     "or set OPENBLAS_NUM_THREADS before starting Python)")
    numba = sys.modules.get("numba")
    if numba is not None:
        try:
            layer = numba.threading_layer()
        except ValueError:
            layer = f"{numba.config.THREADING_LAYER}, chosen at the first parallel loop"
        lines.append(f"now (outside training): numba {numba.get_num_threads()} thread(s) of {numba.config.NUMBA_NUM_THREADS} "
                     f"(layer {layer}; loops under 262,144 elements always run on one thread)")
    numba_backend = sys.modules.get("scratchgen.kernels.numba_cpu")
    if os.environ.get("OMP_WAIT_POLICY"):
        lines.append(f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} (yours)")
    elif numba_backend is not None and getattr(numba_backend, "PASSIVE_WAIT", False):
        lines.append("Numba's OpenMP workers wait passively (OMP_WAIT_POLICY=PASSIVE for its threading layer only): "
                     "idle, they sleep instead of spinning against BLAS's threads")
    else:
        lines.append("OMP_WAIT_POLICY unset (the numba backend makes its own OpenMP workers wait passively when it loads)")
    return lines
