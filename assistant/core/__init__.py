"""The bottom layer: settings, the typed reference data, and the small value types everything
else shares (quarters, numbers with units, NDCs, atomic file writes, the understood question).

Nothing here imports from `index`, `assistant.retrieval`, `assistant.tools`, the engine or the
interfaces; they all import from here (tests/test_layers.py checks it).
"""
