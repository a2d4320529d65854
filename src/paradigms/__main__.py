"""``python -m paradigms`` (and ``torchrun ... -m paradigms run ...``)."""

from .cli import main

main()
