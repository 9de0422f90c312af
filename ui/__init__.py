"""The Gradio layer of the studio: one module per tab (`create_*_tab` lays out, `wire_*_tab` connects events).

Handlers translate widget values into `studio.settings` objects and call the library; nothing else lives here.
"""
