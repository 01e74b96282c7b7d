FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libmagic1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir .
EXPOSE 8000 8001
CMD ["kakehashi", "serve", "--host", "0.0.0.0", "--port", "8000"]
