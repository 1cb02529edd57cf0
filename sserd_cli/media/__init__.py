"""PyAV streaming decode / encode, audio pass-through, still images and atomic outputs."""
