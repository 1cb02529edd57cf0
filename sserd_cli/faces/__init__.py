"""Faces: detection + 5 landmarks (detect, insightface), similarity alignment to the FFHQ-like
crop (align), streaming main-face tracking with temporal smoothing (track), the feathered
crop-space mask (mask) and paste-back (paste).  Import the submodules directly."""
