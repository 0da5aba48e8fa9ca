"""scratchgen's benchmarks: scratchgen side by side with its peers, in one run.

    python -m benchmarks [ops] [kernels] [models] [--quick] [--threads 1,2] [--out DIR]
    scratchgen bench ...                      (the same command)

Read in this order:
    harness.py     how a time is taken (warm-up apart, A B A B pairs, medians, the thread pinning
                   subprocesses) and how other suites' rows are brought into one format
    machine.py     what the numbers were measured on, and this machine's sgemm and memcpy rates
    bench_ops.py   forward+backward of single ops vs PyTorch CPU (the foundation's benchmark)
    report.py      the printed table, JSON, the README markdown table, PNG plots
    __main__.py    the command line: one child process per thread count, then the report
    bench_pools.py how the BLAS and Numba thread pools share the cores (the thread policy's
                   measurements), and the VAE step's GEMMs alone against their bound
    gpu.py         the GPU check (``python -m benchmarks gpu --out DIR``): real-GPU tests and
    gpu_bench.py   GPU rows beside PyTorch CUDA eager, for a machine with an NVIDIA GPU (docs/gpu.md)

Peers (PyTorch, scikit-learn) are optional: a missing peer is a *skipped* row with its reason,
never a failure. Timings are reported, never asserted.
"""
