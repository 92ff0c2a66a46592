"""Language models behind LangChain's chat-model interface: the factory, the local model, the remote one."""
