"""The note domain: timeline, evidence, budget, composition, kinds, prompts, verifier, triage, rendering.

Pure code: imports no FHIR models, Celery, web framework or database.
"""
