"""One entry point per component: component ``X`` calls ``kfp_mlops.<package>.steps.X``.

A newcomer reading a component finds its logic by name: the body imports the package's
``steps`` module (no alias) and calls the function named after the component, which that
module defines. Checked from the bodies' source, the text the compiled YAML carries.
"""

import ast
import importlib
import inspect
import textwrap

import pytest

from kfp_mlops.components.image import all_components

# Components that compute nothing, so have no step: they pass a value or a sentence on.
NO_STEP = {"skip_step", "fixed_params"}
COMPONENTS = [c for c in all_components() if c.python_func.__name__ not in NO_STEP]


def step_imports(body: ast.AST) -> dict[str, str]:
    """Local name -> module of each ``from kfp_mlops.X import steps`` in the body."""
    found = {}
    for node in ast.walk(body):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "kfp_mlops."):
            for alias in node.names:
                assert alias.asname is None, (
                    f"imports {node.module}.{alias.name} as {alias.asname}: call the core by "
                    "its own name")
                if alias.name == "steps":
                    found["steps"] = f"{node.module}.steps"
    return found


@pytest.mark.parametrize("component", COMPONENTS, ids=[c.name for c in COMPONENTS])
def test_a_component_calls_the_step_named_after_it(component):
    name = component.python_func.__name__
    body = ast.parse(textwrap.dedent(inspect.getsource(component.python_func)))
    imported = step_imports(body)
    assert "steps" in imported, f"{name} imports no kfp_mlops.<package>.steps"
    called = {node.func.attr for node in ast.walk(body)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.value.id == "steps"}
    assert called == {name}, f"{name} calls steps.{sorted(called)}, not steps.{name}"
    module = importlib.import_module(imported["steps"])
    assert callable(getattr(module, name, None)), f"{imported['steps']} defines no {name}"
