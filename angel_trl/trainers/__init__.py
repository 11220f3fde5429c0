from .stage1_config import Stage1Config
from .stage1_trainer import LinkingEvaluator, Stage1Trainer

__all__ = ["LinkingEvaluator", "Stage1Config", "Stage1Trainer"]
