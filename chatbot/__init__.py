"""RAGDesk's conversation side: settings and wiring at the top, one sub-package (room) per part below."""
