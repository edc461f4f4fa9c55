"""`output.enable_custom_widget_manager()`: in Colab it lets third-party ipywidgets (TFMA's view) render."""

from __future__ import annotations

CALLS: list[str] = []


def enable_custom_widget_manager() -> None:
    CALLS.append("enable_custom_widget_manager")


def disable_custom_widget_manager() -> None:
    CALLS.append("disable_custom_widget_manager")
