"""Import-time work the fork server of a local run skips: nothing a task computes changes.

Only the warm server of a local run (``prefork.py``) calls these, before it imports the
stage that needs them; a task started by a fresh interpreter (``KFP_MLOPS_PREFORK=0``,
not Linux, a cluster pod) imports the libraries as they are.
"""

from __future__ import annotations


def skip_scipy_docstring_notes() -> bool:
    """Keep SciPy's docstrings as written instead of re-rendering each with a support note.

    SciPy 1.17's ``xp_capabilities`` decorator parses the numpydoc docstring of every
    function it marks (about 600 in ``scipy.stats``, which scikit-learn imports at
    start-up), appends a note on Array API backends and renders it again: 0.3-0.8 s of
    CPU of the model stage's 1.1-1.6 s here, paid before the train task can start. The
    parse is replaced, for that decorator only, by one that returns the docstring as
    written; the capability table the decorator also fills (read by SciPy's own tests)
    is filled as before. Returns whether it applied: not when SciPy is not installed, or
    its decorator is not the one read (``scipy/_lib/_array_api.py``, 1.17).
    """
    try:
        from scipy._lib import _array_api
    except ImportError:
        return False
    decorator = getattr(_array_api, "xp_capabilities", None)
    if decorator is None or "FunctionDoc" not in decorator.__code__.co_names + tuple(
            name for const in decorator.__code__.co_consts if hasattr(const, "co_names")
            for name in const.co_names):
        return False
    _array_api.FunctionDoc = _DocstringAsWritten
    return True


class _DocstringAsWritten:
    """The docstring as written, in the shape ``xp_capabilities`` reads a ``FunctionDoc``.

    A Notes list to append to, and a rendering whose first line (the signature, which it
    drops) is followed by the docstring.
    """

    def __init__(self, function) -> None:
        self._doc = function.__doc__ or ""
        self._sections: dict[str, list[str]] = {"Notes": []}

    def __getitem__(self, section: str) -> list[str]:
        return self._sections.setdefault(section, [])

    def __str__(self) -> str:
        return "\n" + self._doc
