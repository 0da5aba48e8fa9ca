"""Evaluation: the expensive measurements made after training, one concept per module.

Import the module you need, e.g. ``from scratchgen.evaluation import ais``. These run models
(they sit above ``scratchgen.models``); the cheap metrics on plain arrays that models use
themselves (PSNR, AUROC, precision@k) are ``scratchgen.metrics``.

    likelihood.py       latent-variable models: test -ELBO, the importance-weighted bound (IWAE)
    ais.py              annealed importance sampling: log Z of a Bernoulli RBM with its spread,
                        and a certain lower bound on log Z
    sample_quality.py   classifier-Fréchet distance, mode coverage, noisy/blurred references
    parzen.py           Parzen-window log-likelihood (the GAN paper's number, with its caveats)
    report.py           ``scratchgen eval``: every metric that fits a model, on the test split
"""
