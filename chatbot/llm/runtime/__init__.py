"""The local model's inference runtime (batching, KV cache, CPU/CUDA decode kernels); only chatbot.llm imports it."""
