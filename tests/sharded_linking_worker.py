"""Worker for tests/training/test_distributed.py, run by ``torch.distributed.run`` on CPU (gloo): links the same
inputs with ``link_across_processes`` on the linker in ``argv[1]`` wrapped in each of the modes
``argv[3:]`` (``ddp``: bare replicas, ``fsdp1``: FullyShardedDataParallel, ``fsdp2``: fully_shard;
each BART layer its own FSDP unit) and writes ``{mode: results}`` as JSON to ``argv[2]`` (main
process). 7 inputs one at a time cannot be split evenly: a sharded model hangs or fails unless
every process runs the same number of steps.
"""

import functools
import json
import sys
from dataclasses import asdict, replace

from accelerate import PartialState

from angel_trl.linking.linker import EntityLinker
from angel_trl.training.finish import end_processes
from angel_trl.trainers.linking_eval import link_across_processes

INPUTS = [
    "Patients with [ST] lung cancer [ET] were treated.",
    "Severe combined immunodeficiency due to [ST] ADA [ET] in two children.",
    "The guidelines of the [ST] ADA [ET] recommend yearly screening.",
    "A sweat test confirmed [ST] CF [ET] in the infant.",
    "[ST] something unknown entirely [ET]",
    "Obesity raises the risk of [ST] type 2 diabetes [ET] in adults.",
    "A case of [ST] pulmonary carcinoma [ET] was found on imaging.",
]


def wrap(model, mode: str):
    from transformers.models.bart.modeling_bart import BartDecoderLayer, BartEncoderLayer

    layers = [m for m in model.modules() if isinstance(m, (BartEncoderLayer, BartDecoderLayer))]
    if mode == "fsdp1":
        from torch.distributed.fsdp import FullyShardedDataParallel
        from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

        policy = functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={BartEncoderLayer, BartDecoderLayer})
        return FullyShardedDataParallel(model, auto_wrap_policy=policy, device_id=model.device, use_orig_params=True)
    if mode == "fsdp2":
        from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

        for layer in layers:
            fully_shard(layer)
        fully_shard(model)
        register_fsdp_forward_method(model, "generate")  # as the Trainer does under FSDP2
        return model
    return model


def main() -> None:
    model_dir, out, *modes = sys.argv[1:]
    state = PartialState(cpu=True)
    results = {"num_processes": state.num_processes}
    for mode in modes:
        linker = EntityLinker.from_pretrained(model_dir)
        linker.config = replace(linker.config, batch_size=1)
        linker.model = wrap(linker.model.eval(), mode)
        results[mode] = [asdict(r) for r in link_across_processes(linker, INPUTS)]
    if state.is_main_process:
        with open(out, "w") as f:
            json.dump(results, f)
    end_processes()


if __name__ == "__main__":
    main()
