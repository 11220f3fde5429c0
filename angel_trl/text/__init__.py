"""From mentions to model text: the encoder input with its markers, the decoder prompt, TF-IDF-chosen target names, token ids."""
