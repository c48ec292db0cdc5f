"""Runs that are not searches: the seed reports' hand-made experiments as commands.

* :mod:`automnist.experiments.lr_find` -- learning-rate range tests;
* :mod:`automnist.experiments.denoise` -- clean / noisy / denoised comparisons;
* :mod:`automnist.experiments.cv` -- k-fold cross-validation of one configuration.
"""
