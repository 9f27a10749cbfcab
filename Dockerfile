# Airbyte's Python connector layout: code in /airbyte/integration_code, main.py as entrypoint.
FROM docker.io/airbyte/python-connector-base:4.0.0

WORKDIR /airbyte/integration_code
COPY setup.py main.py spec.json ./
COPY source_jmap ./source_jmap
RUN pip install --no-cache-dir .

ENV AIRBYTE_ENTRYPOINT="python /airbyte/integration_code/main.py"
ENTRYPOINT ["python", "/airbyte/integration_code/main.py"]

LABEL io.airbyte.name=airbyte/source-jmap
LABEL io.airbyte.version=0.1.1
