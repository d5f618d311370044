"""``recon batch``: convert, seed (SfM), train and evaluate many scenes, one chain of tasks per scene, locally or
on a Ray cluster, with a manifest that lets an interrupted batch continue where it stopped."""
