"""trainact: reproduction of Z. Liao, *Trainable Activation Function in Image Classification*.

The library behind the Snakemake workflow: data (download, prepare, a device loader),
trainable activations (Fourier series, linear combination), the CNN family, a resumable
trainer, autoencoder pretraining, PSO training, aggregation, figures and the report.
Every workflow rule calls ``python -m trainact <command>``.
"""

__version__ = "0.1.0"
