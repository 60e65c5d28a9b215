"""The model catalog as package data: catalog.json beside this file."""
from pathlib import Path

CATALOG_PATH = Path(__file__).with_name("catalog.json")
