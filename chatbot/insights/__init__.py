"""Insights for the support team: knowledge gaps and the FAQ drafted from them, support metrics, and the
evaluation gate that scores a template version against a knowledge base's test set before it goes live."""
