"""The lowest layer: the event contract, the reconciliation rules and the documents the job emits.

Pure Python. Imports nothing of the project; everything else may import it.
"""
