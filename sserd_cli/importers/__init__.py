"""Import foreign StyleGAN2 weights into sserd bundles without executing code from the files.

- :mod:`.safe_pickle`: restricted unpicklers (allow-list of data builders only).
- :mod:`.rosinality`: rosinality/stylegan2-pytorch ``.pt`` checkpoints (keys already sserd's).
- :mod:`.nvlabs`: NVlabs stylegan2-ada-pytorch / stylegan3 ``.pkl`` network pickles (keys mapped).
- :mod:`.stylegan`: format detection, config inference, :func:`import_stylegan`.
"""

from .stylegan import FORMATS, detect_format, import_stylegan, infer_config, read_stylegan

__all__ = ["FORMATS", "detect_format", "import_stylegan", "infer_config", "read_stylegan"]
