"""Training runs end to end: models, LoRA, stage 1, stage 2, iterative and cross-fitted mining, and what every run saves at its end."""
