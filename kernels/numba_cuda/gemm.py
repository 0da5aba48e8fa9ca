"""A tiled shared-memory GEMM in Numba CUDA, written to be read next to cuBLAS (not the default path).

C (M, N) = A (M, K) @ B (K, N), row-major, float32 or float64. Three versions, each one idea
further from the naive loop:

1. ``matmul_naive``: one thread per C element, a K-long dot product read straight from global
   memory. Every A and B element is fetched from DRAM/L2 N or M times: bandwidth-bound.

2. Shared-memory tiles: a block of threads computes a BM x BN tile of C. It walks K in steps of
   BK, each step copying an A tile (BM x BK) and a B tile (BK x BN) into shared memory once,
   after which every thread of the block reads them from there. Global traffic drops by a
   factor of about BM (and BN).

3. Register blocking (``matmul_tiled``, what this module implements): each of the 256 threads
   computes TM x TN = 8 x 8 outputs, kept in registers (a ``cuda.local.array`` that the
   compiler unrolls into 64 registers). Per k it reads 8 A values and 8 B values from shared
   memory and does 64 fused multiply-adds with them.

    block tile  BM x BN = 128 x 128,  BK = 8,  256 threads as a 16 x 16 grid (ty, tx)
    thread (ty, tx) owns the 8 rows    4 ty + i  and  64 + 4 ty + i      (i = 0..3)
                     and the 8 columns 4 tx + j  and  64 + 4 tx + j      (j = 0..3)

Why *groups of four*: a thread's four neighbouring values sit in four consecutive, 16-byte
aligned shared-memory words, which the compiler reads with one 128-bit load (``ld.shared.v4``):
4 shared-memory instructions per 64 multiply-adds instead of 16. With one word per load the
shared-memory pipe (one warp instruction per clock) would cap the kernel near half the FP32
peak before any multiply-add ran. The second group sits 64 away so that eight threads of a
quarter-warp read 32 consecutive words: no bank conflicts. The C stores are four consecutive
columns per thread, so they coalesce too.

A is stored transposed in shared memory (``a_tile[k, m]``) so that the inner loop reads a row
of both tiles; its rows are padded by four words (BM + 4), which makes the transposing stores
hit 32 different banks (unpadded, eight threads would share one). Edges (M, N, K not
multiples of the tile) load zeros and skip stores.

What it leaves out, and cuBLAS does not: vectorised 128-bit global loads, double-buffered tiles
(loading the next tile while computing on this one), warp-level tiling and, on Hopper, the
tensor cores (TF32, wgmma) - which is why cuBLAS stays ahead. ``python -m scratchgen.kernels.ptxcheck``
compiles it without a GPU; its PTX shows the ``ld.shared.v4.f32`` loads and no local memory.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, float64

from scratchgen.backend import get_array_module

from ._launch import SIMULATED, configure, device_float_arrays

BM, BN, BK = 128, 128, 8
TM, TN = 8, 8
GROUP = 4  # a thread's outputs come in 2 x 2 groups of 4 x 4, HALF apart
HALF_M, HALF_N = BM // 2, BN // 2
THREADS_X, THREADS_Y = BN // TN, BM // TM  # 16 x 16 = 256 threads per block
PAD = 4  # words of padding per a_tile row (keeps 16-byte alignment, spreads the transposing stores)
A_ROW = BM + PAD  # (shared-array shapes must be constants, not expressions)
ALIGN = None if SIMULATED else 16  # bytes: tile rows start 16-byte aligned (the simulator takes no alignment)


@cuda.jit
def _matmul_naive(a, b, c):
    row, col = cuda.grid(2)
    if row < c.shape[0] and col < c.shape[1]:
        total = 0.0
        for k in range(a.shape[1]):
            total += a[row, k] * b[k, col]
        c[row, col] = total


def _make_tiled(dtype):
    """The register-blocked tiled kernel for one dtype (shared and local arrays need it fixed)."""

    @cuda.jit
    def matmul_tiled_kernel(a, b, c):
        m_size, k_size = a.shape
        n_size = b.shape[1]
        t = cuda.threadIdx.x
        ty = t // THREADS_X
        tx = t & (THREADS_X - 1)  # t % THREADS_X; the mask lets the compiler prove 4 tx + i >= 0 (needed for 128-bit loads)
        block_row, block_col = cuda.blockIdx.y * BM, cuda.blockIdx.x * BN

        # a_tile[k, m] = A[block_row + m, k0 + k] (transposed, padded rows); b_tile[k, n] = B[k0 + k, block_col + n]
        a_tile = cuda.shared.array((BK, A_ROW), dtype, alignment=ALIGN)
        b_tile = cuda.shared.array((BK, BN), dtype, alignment=ALIGN)
        acc = cuda.local.array((TM, TN), dtype)
        a_frag = cuda.local.array(TM, dtype)
        b_frag = cuda.local.array(TN, dtype)
        for m in range(TM):
            for n in range(TN):
                acc[m, n] = 0.0

        for k0 in range(0, k_size, BK):
            # Cooperative loads: 256 threads x 4 elements = one 128 x 8 tile of A and one 8 x 128 of B.
            for load in range(BM * BK // (THREADS_X * THREADS_Y)):
                e = t + load * THREADS_X * THREADS_Y
                row, kk = e // BK, e % BK
                gr, gk = block_row + row, k0 + kk
                a_tile[kk, row] = a[gr, gk] if gr < m_size and gk < k_size else 0.0
                kk, col = e // BN, e % BN
                gk, gc = k0 + kk, block_col + col
                b_tile[kk, col] = b[gk, gc] if gk < k_size and gc < n_size else 0.0
            cuda.syncthreads()
            for kk in range(BK):
                for i in range(GROUP):  # two 128-bit loads from each tile
                    a_frag[i] = a_tile[kk, GROUP * ty + i]
                    a_frag[GROUP + i] = a_tile[kk, HALF_M + GROUP * ty + i]
                    b_frag[i] = b_tile[kk, GROUP * tx + i]
                    b_frag[GROUP + i] = b_tile[kk, HALF_N + GROUP * tx + i]
                for m in range(TM):
                    for n in range(TN):
                        acc[m, n] += a_frag[m] * b_frag[n]
            cuda.syncthreads()  # the tiles are overwritten by the next k0

        for m in range(TM):
            row = block_row + (m // GROUP) * HALF_M + GROUP * ty + m % GROUP
            if row < m_size:
                for n in range(TN):
                    col = block_col + (n // GROUP) * HALF_N + GROUP * tx + n % GROUP
                    if col < n_size:
                        c[row, col] = acc[m, n]

    return matmul_tiled_kernel


_TILED = {np.dtype(np.float32): _make_tiled(float32), np.dtype(np.float64): _make_tiled(float64)}


def _check(name, a, b):
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"{name}: shapes {a.shape} and {b.shape} do not align")
    if not device_float_arrays(a, b):
        raise TypeError(f"{name}: needs two float32 or two float64 device arrays, got {a.dtype} and {b.dtype}")


def matmul_tiled(a, b):
    """C = A @ B with the register-blocked shared-memory kernel. a: (M, K), b: (K, N) -> (M, N)."""
    _check("matmul_tiled", a, b)
    xp = get_array_module(a)
    a, b = xp.ascontiguousarray(a), xp.ascontiguousarray(b)
    c = xp.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    blocks = (math.ceil(c.shape[1] / BN), math.ceil(c.shape[0] / BM))
    if c.size:
        configure(_TILED[np.dtype(a.dtype)], blocks, THREADS_X * THREADS_Y)(a, b, c)
    return c


def matmul_naive(a, b):
    """C = A @ B, one thread per output element, no shared memory (the baseline)."""
    _check("matmul_naive", a, b)
    xp = get_array_module(a)
    c = xp.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    threads = (8, 8) if SIMULATED else (16, 16)
    blocks = (math.ceil(c.shape[0] / threads[0]), math.ceil(c.shape[1] / threads[1]))
    if c.size:
        configure(_matmul_naive, blocks, threads)(xp.ascontiguousarray(a), xp.ascontiguousarray(b), c)
    return c


def gemm_flops(m: int, n: int, k: int) -> int:
    """Floating-point operations of an (M, K) x (K, N) product: one multiply and one add per term."""
    return 2 * m * n * k
