"""liveparams: change the hyperparameters of a running training from a Supabase-backed UI.

The importable pieces live in ``agent`` and ``trainer_hooks``; this package holds
the command line (``liveparams.cli``) and the local development stack
(``liveparams.stack``), which the training side never imports.
"""
