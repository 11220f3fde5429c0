"""Peers and analyses used by the benchmarks: exact match, dictionary, TF-IDF and dense nearest-name linkers, the embedding cache, accuracy by similarity."""
