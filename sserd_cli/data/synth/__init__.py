"""The synthetic talking-face world (SPEC section 6): a procedural face renderer with exact ground
truth, speech-like audio driving the mouth, talking clips, datasets in the shared index format, and
true answers of emotion edits."""
