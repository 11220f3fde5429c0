"""KB-guided pre-training (ANGEL_PT): training rows and preference pairs made from the KB alone.

``corpus`` (template rows and TF-IDF negative pairs of one shard) <- ``workers`` (shards made in
parallel) <- ``shards`` (the corpus in memory or as resumable parquet shards) <- ``training`` (the
pre-training run of ``recipes/pretrain.py``).
"""
