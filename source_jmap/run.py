import sys

from airbyte_cdk.entrypoint import launch

from .source import SourceJmap


def run() -> None:
    launch(SourceJmap(), sys.argv[1:])
