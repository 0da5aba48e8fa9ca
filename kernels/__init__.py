"""Accelerated kernels: the same names and signatures as the NumPy references, on other backends.

Each backend is a subpackage with one module per kernel family, so a reader can put the three
versions of a kernel side by side::

    kernels/numba_cpu/     njit(parallel=True) loops over host arrays          backend "numba"
    kernels/numba_cuda/    @cuda.jit kernels (CuPy arrays via __cuda_array_interface__,
                           or host arrays in the CUDA simulator)              backend "numba-cuda"
    kernels/cupy_backend/  CuPy ElementwiseKernel / RawKernel / fused kernels  backend "cupy"

    family           references in                 kernels
    activations      scratchgen/ops/activations.py  sigmoid tanh relu leaky_relu softplus gelu gelu_tanh
                                                    (forward, backward)
    losses           scratchgen/ops/losses.py       sigmoid_bce_with_logits (forward, backward)
    divergences      scratchgen/ops/divergences.py  gaussian_kl_standard, reparameterize, contractive_penalty
    optim            scratchgen/optim.py            adam_update (fused over all parameters), sgd_update
    rbm              scratchgen/ops/rbm.py          rbm_sample_hidden/visible, rbm_gibbs_step, rbm_cd_statistics
    conv             scratchgen/ops/conv.py         im2col col2im conv_to_columns conv_from_columns conv_batch_last
    normalization    scratchgen/ops/normalization.py  batch_norm layer_norm (forward, backward)
    attention        scratchgen/ops/attention.py    masked_softmax (forward, backward)
    gemm             (numba_cuda only)              a tiled shared-memory GEMM for learners

Importing a subpackage registers its kernels with ``scratchgen.backend.register_kernel(name,
backend=...)``; it imports only if its packages are installed, and its ``check_available()``
raises ``BackendUnavailableError`` (what is missing, how to install it) when it cannot run.
Use them through the switch (``scratchgen.set_backend("numba")``), never by importing them.

What each backend leaves to the NumPy reference, and why (``scratchgen.backend.format_kernel_table()``):

* numba: ``tanh_forward`` is written but shelved - NumPy's AVX-512 ``tanh`` is a single SIMD
  pass and beats our expm1-based loop about 3x. ``gaussian_kl_standard_forward/backward`` are
  shelved too: NumPy's AVX-512 ``expm1`` wins on a VAE's small, cache-resident (N, latent)
  arrays (the fused loop only wins at millions of elements). Elementwise inputs under ``SMALL_INPUT``
  (8,192) elements go to the reference too: starting a parallel loop costs more than NumPy
  needs for them. ``rbm_cd_statistics`` has no Numba version: it is two GEMMs, BLAS's work
  either way. The loops' exp/expm1/log1p are our own vectorisable versions (``numba_cpu/_math.py``),
  because Numba's ``math.exp`` is a scalar libm call that would lose to NumPy's SIMD.
* numba-cuda: kernels it lacks (the CD statistics, the other losses) run on
  CuPy (its fallback), matmuls on cuBLAS. ``scratchgen.kernels.ptxcheck`` compiles every kernel for a
  real GPU architecture without one (the simulator cannot catch type errors).
* cupy: the conv layout changes and batch norm are the reference running on CuPy arrays (its
  im2col and col2im are ours; CuPy's transposes and reductions are already single kernels). Layer
  norm and the masked softmax are RawModules (a block per row), GELU ElementwiseKernels on CUDA's erfc.
  ``scratchgen.kernels.cupycheck`` compiles all of its CUDA C++ with NVRTC without a GPU.

``launches.py`` counts the launches of both GPU backends (launches per training step), and
``python -m benchmarks gpu`` (docs/gpu.md) is the check that runs all of this on a real GPU:
neither GPU backend has run on one yet.
* attention itself (``scaled_dot_product_attention``) is GEMMs around the masked softmax
  kernels on every backend; on host arrays the op runs it over L2-sized blocks of heads.
"""
