"""angel-trl: generative biomedical entity linking trained with negative samples (ANGEL), on TRL."""

__version__ = "0.1.0"
