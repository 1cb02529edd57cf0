"""sserd: change the emotion of a talking face in a video while keeping its speech.

Implements SSERD (Self-Supervised Emotion Representation Disentanglement,
ACM MM 2024) end to end. Import graph flows one way:
``cli -> pipeline / training / evaluation -> nets, losses, faces, media -> torch, av, cv2``.
"""

__version__ = "0.1.0"
