"""``recon models``: the named models and checkpoints recon can use, and their explicit download (``fetch``).

Nothing in recon downloads by itself: training, ``recon depth`` and the matchers read local files only. A user who is
online runs ``recon models fetch NAME`` once; the file lands where recon looks for it (the torch hub cache for
checkpoints, the Hugging Face cache for transformers models).
"""
