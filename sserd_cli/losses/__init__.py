"""Training criteria, one per file: contrastive (eq. 5-6, with its code cache), adversarial
(StyleGAN2 logistic losses, R1, path length), perceptual (VGG19 / LPIPS from user weights,
documented fallback) and reconstruction (pixel L2)."""
