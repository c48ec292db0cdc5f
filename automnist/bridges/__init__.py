"""Bridges to the tools people already use: TensorBoard's HParams dashboard
(:mod:`~automnist.bridges.tensorboard`, ``--tensorboard DIR``) and MLflow tracking
(:mod:`~automnist.bridges.mlflow`, ``automnist export RUN --to mlflow``).  Each imports
its library only when used."""
