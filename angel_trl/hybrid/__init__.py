"""The hybrid linker: candidates from constrained beam search and retrievers, scored exactly by the generative model and ranked by a small learned ranker."""
