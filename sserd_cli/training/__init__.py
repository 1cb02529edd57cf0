"""Training: one coach per stage of the paper, sharing one loop, run directory and checkpoint format.

- ``stylegan``: StyleGAN2 from scratch (``sserd train-stylegan``)
- ``encoder``: inversion, eq. 8-10 (``sserd train-encoder``)
- ``pairs``: SVM edit directions and the synthetic paired set, eq. 11-12 (``sserd build-pairs``)
- ``sserd``: hybrid CELCL training, eq. 13-14 (``sserd train``)
- ``run`` (run directory, loop, checkpoints), ``state`` (nested state <-> safetensors),
  ``dataset`` (index -> batches), ``distributed`` (torchrun), ``critic`` (D with lazy R1),
  ``config`` (dataclass configs), ``cards`` (model cards), ``ranger`` (the optimiser).
"""
