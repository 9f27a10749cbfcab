from setuptools import find_packages, setup

MAIN_REQUIREMENTS = [
    "airbyte-cdk>=7.0,<8",
    "requests>=2.31",
    "pydantic>=2.5,<3",
    "pendulum>=3",
    "msgspec>=0.18",  # the one JSON library: checks an answer whole, decodes its objects one at a time (responses.py)
]

TEST_REQUIREMENTS = [
    "pytest>=8",
    "requests-mock>=1.11",
    "ruff>=0.5",
    "mypy>=1.10",
    "types-requests",
    "airbyte-connector-models>=0.1.12",  # Airbyte's metadata.yaml schema (unit_tests/test_metadata.py)
    # The protocol's pydantic models (module airbyte_protocol), which validate, unlike the CDK's dataclasses:
    # file-mode records as the platform reads them (unit_tests/platform_files.py). The pydantic v2 build: the
    # plain airbyte-protocol-models needs pydantic<2, which the CDK does not allow.
    "airbyte-protocol-models-pdv2>=0.18",
]

# PyAirbyte reading the connector into a local DuckDB file (scripts/warehouse_demo.py); duckdb comes with it.
WAREHOUSE_REQUIREMENTS = [
    "airbyte>=0.71,<0.72",
    "duckdb>=1.1",
]

setup(
    name="airbyte-source-jmap",
    version="0.5.3",
    description="Airbyte source connector for JMAP mail servers (RFC 8620/8621)",
    python_requires=">=3.11",
    packages=find_packages(include=["source_jmap", "source_jmap.*"]),
    package_data={"source_jmap": ["spec.json", "schemas/*.json"]},
    install_requires=MAIN_REQUIREMENTS,
    extras_require={"dev": TEST_REQUIREMENTS, "warehouse": WAREHOUSE_REQUIREMENTS},
    entry_points={"console_scripts": ["source-jmap=source_jmap.run:run"]},
)
