"""``liveparams run``'s bootstrap: every ``transformers.Trainer`` in this process gets the callback at ``train()``.

``liveparams run`` puts this folder at the head of ``PYTHONPATH``, so that Python
runs this file at start-up in the command it execs and in every Python process
that command starts (``torchrun``'s ranks, ``accelerate launch``, TRL's CLI), as
``ddtrace-run`` and ``opentelemetry-instrument`` do. It imports nothing beyond
the standard library's already-loaded modules: a process that never imports
transformers pays one entry on ``sys.meta_path`` and nothing else. When
``transformers.trainer`` is imported, ``liveparams.trainer_hooks._attach``
wraps ``Trainer.train`` (see there). Then the ``sitecustomize`` this one
shadows, if the environment has one, runs as it would have.
"""

import os
import sys

_TARGET = "transformers.trainer"
_HERE = os.path.dirname(os.path.abspath(__file__))


def _patch(module):
    try:
        from liveparams.trainer_hooks._attach import patch_trainer

        patch_trainer(module.Trainer)
    except Exception as exc:  # never stop the user's program: it runs as without `liveparams run`
        sys.stderr.write(
            f"liveparams run: the callback cannot be added ({type(exc).__name__}: {exc}); "
            "training runs without live parameter updates\n"
        )


class _TrainerImportHook:
    """A ``sys.meta_path`` finder that patches ``transformers.trainer`` right after it is executed.

    It finds the module's spec through the other finders and wraps its loader's ``exec_module``;
    the loader keeps its type, so nothing that inspects it sees a difference.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        sys.meta_path[:] = [finder for finder in sys.meta_path if finder is not self]  # one module, once
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        execute = getattr(spec.loader, "exec_module", None)
        if execute is None:
            return spec

        def exec_module(module):
            execute(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


def _install():
    if _TARGET in sys.modules:
        _patch(sys.modules[_TARGET])
    else:
        sys.meta_path.insert(0, _TrainerImportHook())


def _same_folder(entry):
    try:
        return os.path.samefile(entry or os.curdir, _HERE)
    except OSError:
        return False


def _chain():
    """Run the ``sitecustomize`` that this one shadows (a distribution's or a virtualenv's), if any."""
    ours = sys.modules.pop("sitecustomize", None)
    saved = list(sys.path)
    sys.path[:] = [entry for entry in sys.path if not _same_folder(entry)]
    try:
        import sitecustomize  # noqa: F401  (the next one on the path runs here)
    except ImportError as exc:
        if exc.name != "sitecustomize":
            raise
    finally:
        sys.path[:] = saved
        if ours is not None:
            sys.modules["sitecustomize"] = ours


_install()
_chain()
