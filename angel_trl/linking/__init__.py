"""Constrained generation: the prefix trie of KB names, the beam cache, and the linker that turns mentions into ranked concepts."""
