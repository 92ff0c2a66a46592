"""Helpers the tests share: paths, the browser and app runner, corpora, recording callbacks."""
