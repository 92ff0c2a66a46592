"""The chat turn: the turn pipeline, the chain and prompts, assistant templates and their store, history."""
