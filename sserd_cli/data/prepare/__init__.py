"""``sserd prepare``: dataset layouts (MEAD, RAVDESS, a labelled folder) -> aligned crops + one index.

``mead``/``ravdess``/``folder`` only walk a layout and return :class:`ClipSource`
lists; ``crops`` turns one video into aligned crops; ``runner`` schedules the
clips over worker processes, resumes and reports broken videos.
"""
