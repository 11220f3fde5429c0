from angel_trl.trainers.linking_eval import LinkingEvalMixin, LinkingEvaluator
from angel_trl.trainers.seq2seq_dpo_config import Seq2SeqDPOConfig
from angel_trl.trainers.seq2seq_dpo_trainer import Seq2SeqDPOTrainer, refuse_causal_dpo_for_encoder_decoder
from angel_trl.trainers.stage1_config import Stage1Config
from angel_trl.trainers.stage1_trainer import Stage1Trainer

__all__ = ["LinkingEvalMixin", "LinkingEvaluator", "Seq2SeqDPOConfig", "Seq2SeqDPOTrainer", "Stage1Config", "Stage1Trainer", "refuse_causal_dpo_for_encoder_decoder"]
