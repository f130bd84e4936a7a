# datacap in a container. The collector must see the host's interfaces, so run it with the
# host's network namespace:
#   docker build -t datacap .
#   docker run -d --name datacap --network host -v datacap-data:/data datacap
# It listens on 127.0.0.1:8000 (the host's loopback, thanks to --network host).
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY *.py config.json dashboard.html ./
COPY static ./static
COPY datacap ./datacap
COPY deploy ./deploy
RUN useradd --system --home /data datacap && mkdir -p /data && chown datacap /data
USER datacap
VOLUME /data
ENV PYTHONUNBUFFERED=1
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"
CMD ["sh", "-c", "test -f /data/config.json || cp /app/config.json /data/config.json; exec python server.py --config /data/config.json --data-dir /data --no-browser"]
