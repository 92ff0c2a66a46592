"""HTTP front ends: the REST API, the OpenAI-compatible API, the portal widget; thin over the services."""
