"""The conversation: settings, model, prompts, chain, history, service and user interface."""
