"""One theme for every page: the company's colour (RAGDESK_PORTAL__THEME_COLOR) on the chat page, the admin pages,
the portal widget's button and its embedded chat, in light and dark mode."""

from __future__ import annotations

import gradio as gr

_BRAND_VARIABLES = (
    "button_primary_background_fill",
    "button_primary_background_fill_hover",
    "button_primary_border_color",
    "button_primary_border_color_hover",
    "color_accent",
    "loader_color",
    "checkbox_background_color_selected",
    "checkbox_border_color_selected",
    "slider_color",
    "link_text_color",
)


def brand_theme(color: str) -> gr.themes.Base:
    """Gradio's default theme, its orange accents replaced by `color` (#rrggbb); white text on its buttons."""
    theme = gr.themes.Default(primary_hue="blue")
    values = {name: color for name in _BRAND_VARIABLES}
    values |= {f"{name}_dark": color for name in _BRAND_VARIABLES if hasattr(theme, f"{name}_dark")}
    values |= {"button_primary_text_color": "white", "button_primary_text_color_dark": "white"}
    values |= {"color_accent_soft": f"{color}22", "color_accent_soft_dark": f"{color}44"}
    return theme.set(**values)


def brand_override_js(variables: tuple[str, ...] = _BRAND_VARIABLES) -> str:
    """On the embedded chat: the portal page's own colour (the widget's data-color, passed as ?color=) over the
    theme's, for the same variables."""
    css_names = ", ".join(f'"--{name.replace("_", "-")}"' for name in variables)
    return f"""() => {{
  const color = new URLSearchParams(window.location.search).get("color") || "";
  if (!/^#[0-9a-fA-F]{{6}}$/.test(color)) return;
  const style = document.createElement("style");
  const names = [{css_names}];
  const rules = names.map(n => n + ": " + color + " !important;").join(" ");
  style.textContent = ":root, .gradio-container, .dark {{ " + rules + " }}";
  document.head.appendChild(style);
}}"""
