"""The run lifecycle, one module per stage: prepare -> solve -> collect -> check -> evaluate -> record.

Every stage reads and writes only the run directory and can be re-run on an existing one.
"""
