"""Where the repository and its bundled sample knowledge base lie."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SAMPLES = REPO / "knowledge" / "samples"
