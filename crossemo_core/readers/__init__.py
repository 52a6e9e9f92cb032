"""Readers: what emotion one face or one voice shows, on its own (:class:`~.reading.Reading`).

``voice``: a log-mel network trained on RAVDESS + TESS + EmoDB (emotions, valence, arousal).
``face``: the FER2013 expression network combined with MediaPipe's 52 face blendshapes.
"""
